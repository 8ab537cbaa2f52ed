//! The one error type of the crate: what went wrong, where in the source, and what to do.

use std::fmt;

/// What kind of failure an [`Error`] is; it decides the exit status of the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command line itself is wrong (a flag value, `--at`).
    Usage,
    /// The loss text does not follow the grammar.
    Parse,
    /// The loss parses but means nothing (undeclared name, shape mismatch, ...).
    Semantic,
    /// The loss is not defined at the requested point (log of a negative, division by zero).
    Domain,
    /// A request past a documented limit (order, nesting, size).
    Limit,
    /// Reading input failed for a reason other than bad content.
    Io,
}

/// Longest stretch of a source line shown under an error.
const MAX_SHOWN: usize = 160;

/// A place in the loss source, resolved to line and column for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Where the source came from: a path, `<stdin>` or `<inline>`.
    pub source_name: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// The source line for display (tabs as spaces; a window of a very long line).
    pub line_text: String,
    /// How many characters to underline (at least 1).
    pub width: usize,
}

impl Location {
    /// Resolves the byte span `start..end` of `source` to a line, column and underline width.
    ///
    /// ```
    /// use eomderive::error::Location;
    /// let loc = Location::from_span("<inline>", "a\nbc d", 5, 6);
    /// assert_eq!((loc.line, loc.column, loc.width), (2, 4, 1));
    /// assert_eq!(loc.line_text, "bc d");
    /// ```
    pub fn from_span(source_name: &str, source: &str, start: usize, end: usize) -> Location {
        let start = floor_char_boundary(source, start.min(source.len()));
        let end = floor_char_boundary(source, end.clamp(start, source.len()));
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        let width = source[start..end.min(line_end)].chars().count().max(1);
        // Tabs show as one space so the caret lines up; very long lines show a window around
        // the place.
        let text: Vec<char> = source[line_start..line_end]
            .trim_end_matches('\r')
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        let (mut shown_from, mut prefix) = (0, "");
        if text.len() > MAX_SHOWN {
            shown_from = (column - 1).saturating_sub(MAX_SHOWN / 2);
            if shown_from > 0 {
                prefix = "...";
            }
        }
        let shown_to = (shown_from + MAX_SHOWN).min(text.len());
        let mut line_text: String = prefix.to_string();
        line_text.extend(&text[shown_from..shown_to]);
        if shown_to < text.len() {
            line_text.push_str("...");
        }
        Location {
            source_name: source_name.to_string(),
            line,
            column,
            line_text,
            width: width.min(MAX_SHOWN),
        }
    }
}

impl Location {
    /// Where the caret goes in [`Location::line_text`] (which may show a window of the line).
    fn caret_offset(&self) -> usize {
        match self.line_text.strip_prefix("...") {
            Some(_) => 3 + MAX_SHOWN / 2,
            None => self.column - 1,
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// An error with a message, an optional source location and an optional hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The kind, which decides the exit status.
    pub kind: ErrorKind,
    /// One sentence: what was found and, where it helps, what was expected.
    pub message: String,
    /// Where in the loss source, when the error has a place.
    pub location: Option<Box<Location>>,
    /// What to do about it.
    pub help: Option<String>,
}

impl Error {
    /// A new error without location or help.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            location: None,
            help: None,
        }
    }

    /// Adds a hint saying what to do.
    pub fn with_help(mut self, help: impl Into<String>) -> Error {
        self.help = Some(help.into());
        self
    }

    /// Adds a source location.
    pub fn at(mut self, location: Location) -> Error {
        self.location = Some(Box::new(location));
        self
    }

    /// The exit status the command line uses for this error: 2 for bad input, 1 otherwise.
    ///
    /// ```
    /// use eomderive::error::{Error, ErrorKind};
    /// assert_eq!(Error::new(ErrorKind::Parse, "x").exit_code(), 2);
    /// assert_eq!(Error::new(ErrorKind::Io, "x").exit_code(), 1);
    /// ```
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Io => 1,
            _ => 2,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(loc) = &self.location {
            let num = loc.line.to_string();
            let pad = " ".repeat(num.len());
            write!(
                f,
                "\n{pad}--> {}:{}:{}\n{pad} |\n{num} | {}\n{pad} | {}{}",
                loc.source_name,
                loc.line,
                loc.column,
                loc.line_text,
                " ".repeat(loc.caret_offset()),
                "^".repeat(loc.width)
            )?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
