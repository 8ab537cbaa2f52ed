//! Loss source text with its name, and the limits checked before parsing.

use crate::error::{Error, ErrorKind, Location, Result};

/// Deepest nesting of parentheses and brackets accepted.
pub const MAX_NESTING: usize = 256;
/// Most operator characters accepted in one loss (a bound on expression depth).
pub const MAX_OPERATORS: usize = 200_000;

/// Loss text and where it came from (a path, `<stdin>` or `<inline>`), for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Shown in error locations.
    pub name: String,
    /// The text.
    pub text: String,
}

impl Source {
    /// A loss written on the command line.
    pub fn inline(text: &str) -> Source {
        Source {
            name: "<inline>".into(),
            text: text.into(),
        }
    }

    /// Source from raw bytes, which must be UTF-8.
    ///
    /// ```
    /// use eomderive::lang::Source;
    /// let err = Source::from_bytes("f.expr", b"loss = u\n\xff".to_vec()).unwrap_err();
    /// assert!(err.to_string().contains("f.expr:2:1"));
    /// ```
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Source> {
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Source {
                name: name.into(),
                text,
            }),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let valid = String::from_utf8_lossy(&e.as_bytes()[..at]).into_owned();
                let shown = valid.clone() + "?";
                Err(Error::new(
                    ErrorKind::Parse,
                    format!("the loss is not valid UTF-8 (byte {at})"),
                )
                .at(Location::from_span(name, &shown, at, at + 1))
                .with_help("save the file as UTF-8 text"))
            }
        }
    }

    /// An error at byte span `start..end` of this source.
    pub fn error(&self, kind: ErrorKind, start: usize, end: usize, message: String) -> Error {
        Error::new(kind, message).at(Location::from_span(&self.name, &self.text, start, end))
    }

    /// Rejects empty input and input nested or sized past the documented limits.
    pub(crate) fn check_limits(&self) -> Result<()> {
        let mut depth = 0usize;
        let mut operators = 0usize;
        let mut in_comment = false;
        let mut only_blank = true;
        for (i, c) in self.text.char_indices() {
            if in_comment {
                in_comment = c != '\n';
                continue;
            }
            match c {
                '#' => {
                    in_comment = true;
                    continue;
                }
                '(' | '[' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(self
                            .error(
                                ErrorKind::Limit,
                                i,
                                i + 1,
                                format!("parentheses and brackets nest deeper than {MAX_NESTING} levels"),
                            )
                            .with_help("name an intermediate with `let` to flatten the expression"));
                    }
                }
                ')' | ']' => depth = depth.saturating_sub(1),
                '+' | '-' | '*' | '/' | '^' => operators += 1,
                _ => {}
            }
            only_blank &= c.is_whitespace() || c == ';';
            if operators > MAX_OPERATORS {
                return Err(self.error(
                    ErrorKind::Limit,
                    i,
                    i + 1,
                    format!("the loss has more than {MAX_OPERATORS} operators"),
                ));
            }
        }
        if only_blank {
            // Just past the last non-blank text (a comment), as for a missing `loss` line.
            let end = self.text.trim_end().len();
            return Err(self
                .error(ErrorKind::Parse, end, end, "the loss is empty".into())
                .with_help("write a loss, e.g. `loss = (u*v - 1)^2/2`, or just `(u*v - 1)^2/2`"));
        }
        Ok(())
    }
}

impl Source {
    /// The loss named on the command line: `-` reads standard input, an existing path reads
    /// that file, and anything else is taken as the loss itself (named `<inline>`).
    pub fn from_argument(arg: &str) -> Result<Source> {
        use std::io::Read;
        if arg == "-" {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes).map_err(|e| {
                Error::new(ErrorKind::Io, format!("cannot read standard input: {e}"))
            })?;
            return Source::from_bytes("<stdin>", bytes);
        }
        let path = std::path::Path::new(arg);
        if path.is_dir() {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("`{arg}` is a directory, not a loss file"),
            ));
        }
        if path.is_file() {
            let bytes = std::fs::read(path)
                .map_err(|e| Error::new(ErrorKind::Io, format!("cannot read `{arg}`: {e}")))?;
            return Source::from_bytes(arg, bytes);
        }
        Ok(Source::inline(arg))
    }

    /// True for a loss written on the command line rather than read from a file or stdin.
    pub fn is_inline(&self) -> bool {
        self.name == "<inline>"
    }
}
