//! Text → model: the pest grammar (`grammar/loss.pest`), the syntax tree, and lowering of
//! indices, reductions and `let`s to one shared scalar expression graph, with the settings a
//! file may write (`weight_decay` into the loss; `optimizer`, `momentum`, `rho_ratio`,
//! `batches`, `batch_order` into [`Settings`], for the caller to combine with the command
//! line's flags), and the per-example terms of `loss = mean(i, …)` that SGD splits into
//! batches ([`Model::batch_losses`]).

mod ast;
mod lower;
mod model;
mod point;
mod source;

pub use lower::close_method;
pub use model::{Model, Settings};
pub use point::{parse_exact, parse_point};
pub use source::Source;

use crate::error::Result;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/loss.pest"]
struct Syntax;

/// Parses and lowers a loss. Errors carry the line, column and source line.
///
/// ```
/// use eomderive::lang::{parse, Source};
/// let model = parse(&Source::inline("(u*v - 1)^2/2")).unwrap();
/// assert_eq!(model.params, ["u", "v"]);
/// let err = parse(&Source::inline("loss = abs(u)")).unwrap_err();
/// assert_eq!(err.exit_code(), 2);
/// assert!(err.to_string().contains("smooth"));
/// ```
pub fn parse(source: &Source) -> Result<Model> {
    source.check_limits()?;
    // Deeply nested input recurses in the parser; a large stack makes every input that passes
    // the limits above safe.
    let src = source.clone();
    std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(move || lower::lower(&src))
        .map_err(|e| crate::error::Error::new(crate::error::ErrorKind::Io, e.to_string()))?
        .join()
        .unwrap_or_else(|_| {
            Err(crate::error::Error::new(
                crate::error::ErrorKind::Io,
                "internal error while parsing the loss (please report it)",
            ))
        })
}

/// Parses a loss given as a string (source name `<inline>`).
pub fn parse_str(text: &str) -> Result<Model> {
    parse(&Source::inline(text))
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    let len = word.chars().count();
    // Closest first; among equals, a swap of two letters (`tahn` → `tanh`) beats a deletion,
    // then the same length beats another.
    candidates
        .into_iter()
        .map(|c| {
            let swap = is_transposition(word, c);
            let d = if swap { 1 } else { edit_distance(word, c) };
            (d, !swap, len.abs_diff(c.chars().count()), c)
        })
        .filter(|&(d, ..)| d <= limit)
        .min()
        .map(|(.., c)| c)
}

/// True when `b` is `a` with two adjacent letters swapped.
fn is_transposition(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len() != b.len() {
        return false;
    }
    let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    diff.len() == 2
        && diff[1] == diff[0] + 1
        && a[diff[0]] == b[diff[1]]
        && a[diff[1]] == b[diff[0]]
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != b[j]))
                .min(row[j] + 1)
                .min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
