//! The `--at NAME=VALUE,...` syntax: exact values for named scalar parameters.

use num_rational::BigRational;

use super::{ast::parse_number, did_you_mean, Model};
use crate::error::{Error, ErrorKind, Location, Result};

/// Applies `--at` assignments (`u=0.3,v=-1.2,w[2]=1/3`) over the model's initial values.
/// Returns the point with every parameter's value, or an error naming what is wrong or
/// missing, located in the `--at` text.
///
/// ```
/// let m = eomderive::lang::parse_str("param w[2] = [1, 2]\nparam u\nloss = u*w[1]*w[2]").unwrap();
/// let p = eomderive::lang::parse_point(&m, Some("u=-0.5, w[2]=1/3")).unwrap();
/// assert_eq!(p[1].to_string(), "1/3");
/// assert_eq!(p[2].to_string(), "-1/2");
/// assert!(eomderive::lang::parse_point(&m, None).is_err()); // u has no value
/// assert!(eomderive::lang::parse_point(&m, Some("q=1")).is_err());
/// ```
pub fn parse_point(model: &Model, at: Option<&str>) -> Result<Vec<BigRational>> {
    let mut values = model.initial.clone();
    if let Some(text) = at {
        let err = |start: usize, end: usize, msg: String| {
            Error::new(ErrorKind::Usage, msg).at(Location::from_span("--at", text, start, end))
        };
        let mut pos = 0;
        while pos < text.len() {
            // One `name=value` item; commas inside brackets belong to the name.
            let mut depth = 0i32;
            let mut end = text.len();
            for (i, c) in text[pos..].char_indices() {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    ',' if depth == 0 => {
                        end = pos + i;
                        break;
                    }
                    _ => {}
                }
            }
            let item = &text[pos..end];
            let lead = item.len() - item.trim_start().len();
            let Some(eq) = item.find('=') else {
                return Err(err(
                    pos,
                    end,
                    format!("expected NAME=VALUE, found `{}`", item.trim()),
                )
                .with_help("write e.g. --at u=0.3,w[2]=-1"));
            };
            let name: String = item[..eq].chars().filter(|c| !c.is_whitespace()).collect();
            let Some(k) = model.param_index(&name) else {
                let help = match did_you_mean(&name, model.params.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("the parameters are {}", model.params.join(", ")),
                };
                return Err(err(
                    pos + lead,
                    pos + eq,
                    format!("`{name}` is not a parameter of this loss"),
                )
                .with_help(help));
            };
            let vtext = item[eq + 1..].trim();
            let vstart = pos + eq + 1 + (item[eq + 1..].len() - item[eq + 1..].trim_start().len());
            let Some(v) = parse_exact(vtext) else {
                return Err(err(
                    vstart,
                    vstart + vtext.len().max(1),
                    format!("`{vtext}` is not a number"),
                )
                .with_help("write a decimal (0.3, -1e-2) or a fraction (1/3)"));
            };
            values[k] = Some(v);
            pos = end + 1;
        }
    }
    let missing: Vec<&str> = model
        .params
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(p, _)| p.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("no value for {}", missing.join(", ")),
        )
        .with_help(format!(
            "give it with --at {}=..., or a value in the loss file (`param {} = ...`)",
            missing[0],
            missing[0].split('[').next().unwrap_or(missing[0])
        )));
    }
    Ok(values.into_iter().map(Option::unwrap).collect())
}

/// An exact number as `--at` and `--weight-decay` take it: optional sign, a decimal,
/// optionally `/` a decimal.
///
/// ```
/// use eomderive::lang::parse_exact;
/// assert_eq!(parse_exact("1/100"), parse_exact("1e-2"));
/// assert_eq!(parse_exact("-0.5").unwrap().to_string(), "-1/2");
/// assert_eq!(parse_exact("x"), None);
/// ```
pub fn parse_exact(s: &str) -> Option<BigRational> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let decimal = |t: &str| {
        let t = t.trim();
        let ok = !t.is_empty()
            && t.starts_with(|c: char| c.is_ascii_digit() || c == '.')
            && t.chars().all(|c| c.is_ascii_digit() || ".eE+-".contains(c));
        if ok {
            parse_number(t)
        } else {
            None
        }
    };
    let v = match s.split_once('/') {
        Some((n, d)) => {
            let d = decimal(d)?;
            if num_traits::Zero::is_zero(&d) {
                return None;
            }
            decimal(n)? / d
        }
        None => decimal(s)?,
    };
    Some(if neg { -v } else { v })
}
