//! Output formats: the only place that knows how results look as text and JSON.

mod json;
mod text;

pub use json::json;
pub use text::{text, Printer};
