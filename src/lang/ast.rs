//! The syntax tree of a loss file, built from the pest parse.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::Zero;
use pest::iterators::Pair;
use pest::Parser;

use super::{Rule, Syntax};

/// A byte range in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    fn of(pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        Span {
            start: s.start(),
            end: s.end(),
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// A name with its place.
#[derive(Debug, Clone)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
}

#[derive(Debug, Clone)]
pub enum Expr {
    Num(BigRational, Span),
    Name(Name),
    Index(Name, Vec<Expr>, Span),
    Call(Name, Vec<Arg>, Span),
    Neg(Box<Expr>, Span),
    Binary(BinOp, Box<Expr>, Box<Expr>, Span),
}

impl Expr {
    pub fn span(&self) -> Span {
        match self {
            Expr::Num(_, s)
            | Expr::Index(_, _, s)
            | Expr::Call(_, _, s)
            | Expr::Neg(_, s)
            | Expr::Binary(_, _, _, s) => *s,
            Expr::Name(n) => n.span,
        }
    }
}

/// An argument of a call: an expression, or a reduction's `i in lo..hi`.
#[derive(Debug, Clone)]
pub enum Arg {
    Expr(Expr),
    Binder(Name, i64, i64, Span),
}

/// A value in a `param`/`data` declaration: a constant expression or a nested array.
#[derive(Debug, Clone)]
pub enum Value {
    Scalar(Expr),
    Array(Vec<Value>, Span),
}

#[derive(Debug, Clone)]
pub struct Decl {
    pub name: Name,
    pub dims: Option<(Vec<usize>, Span)>,
    pub value: Option<Value>,
}

#[derive(Debug, Clone)]
pub enum Stmt {
    Param(Vec<Decl>),
    Data(Vec<Decl>),
    Let {
        name: Name,
        indices: Vec<Name>,
        body: Expr,
    },
    Loss {
        body: Expr,
        span: Span,
    },
    /// `weight_decay = λ`.
    Decay {
        body: Expr,
        span: Span,
    },
    /// `optimizer = NAME`: the name as written (the lowering knows which are methods).
    Optimizer {
        name: Name,
        span: Span,
    },
    /// `momentum = β`.
    Momentum {
        body: Expr,
        span: Span,
    },
    /// `rho_ratio = r`.
    RhoRatio {
        body: Expr,
        span: Span,
    },
    /// `batches = m`.
    Batches {
        body: Expr,
        span: Span,
    },
    /// `batch_order = NAME`: the name as written (the lowering knows which are orders).
    BatchOrder {
        name: Name,
        span: Span,
    },
}

/// A parsed file: statements, or one bare expression.
#[derive(Debug, Clone)]
pub enum File {
    Program(Vec<Stmt>),
    Bare(Expr),
}

/// A syntax error: the span and what was expected there.
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
}

/// Inside parentheses and brackets a statement continues on the next line: line breaks there
/// (and comments, which would otherwise run to the end of the joined line) become spaces.
/// Every byte keeps its offset, so spans still point into the original text.
/// Unbalanced brackets are reported here, at the bracket, which says more than the parser can.
fn join_bracketed_lines(source: &str) -> Result<std::borrow::Cow<'_, str>, SyntaxError> {
    let mut out = String::with_capacity(source.len());
    let mut open: Vec<(usize, char)> = Vec::new();
    let mut in_comment = false;
    for (at, c) in source.char_indices() {
        let depth = open.len();
        if in_comment {
            if c == '\n' {
                in_comment = false;
                out.push(if depth > 0 { ' ' } else { '\n' });
            } else if depth > 0 {
                out.extend(std::iter::repeat_n(' ', c.len_utf8()));
            } else {
                out.push(c);
            }
            continue;
        }
        match c {
            '#' => {
                in_comment = true;
                out.push(if depth > 0 { ' ' } else { '#' });
                continue;
            }
            '(' | '[' => open.push((at, c)),
            ')' | ']' => {
                let want = if c == ')' { '(' } else { '[' };
                match open.pop() {
                    Some((_, o)) if o == want => {}
                    Some((start, o)) => {
                        let line = source[..start].matches('\n').count() + 1;
                        let column = source[..start]
                            .rsplit('\n')
                            .next()
                            .map_or(0, |l| l.chars().count())
                            + 1;
                        return Err(SyntaxError {
                            span: Span { start: at, end: at + 1 },
                            message: format!(
                                "`{c}` closes the `{o}` of line {line}, column {column}; expected `{}`",
                                if o == '(' { ')' } else { ']' }
                            ),
                        });
                    }
                    None => {
                        return Err(SyntaxError {
                            span: Span {
                                start: at,
                                end: at + 1,
                            },
                            message: format!("unmatched `{c}`"),
                        })
                    }
                }
            }
            '\n' | '\r' if depth > 0 => {
                out.push(' ');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    if let Some(&(start, o)) = open.last() {
        return Err(SyntaxError {
            span: Span {
                start,
                end: start + 1,
            },
            message: format!("this `{o}` is never closed"),
        });
    }
    Ok(std::borrow::Cow::Owned(out))
}

/// Parses the whole source.
pub fn parse(source: &str) -> Result<File, SyntaxError> {
    let joined = join_bracketed_lines(source)?;
    parse_joined(&joined, source)
}

fn parse_joined(joined: &str, source: &str) -> Result<File, SyntaxError> {
    let mut pairs = Syntax::parse(Rule::file, joined).map_err(|e| {
        let mut e = syntax_error(e);
        // `\r` is skipped as whitespace, so an error at a CRLF line break (or at the end after
        // a final `\r`) lands after the `\r`; put it on the `\r`, just past the visible line.
        let (at, bytes) = (e.span.start, source.as_bytes());
        if at > 0 && matches!(bytes.get(at), Some(b'\n') | None) && bytes[at - 1] == b'\r' {
            e.span.start -= 1;
            e.span.end = e.span.end.max(at) - 1;
        }
        e
    })?;
    let file = pairs.next().unwrap();
    let inner = file.into_inner().next().unwrap();
    match inner.as_rule() {
        Rule::program => inner
            .into_inner()
            .map(stmt)
            .collect::<Result<_, _>>()
            .map(File::Program),
        Rule::bare => expr(inner.into_inner().next().unwrap()).map(File::Bare),
        r => unreachable!("file holds {r:?}"),
    }
}

fn syntax_error(e: pest::error::Error<Rule>) -> SyntaxError {
    let (start, end) = match e.location {
        pest::error::InputLocation::Pos(p) => (p, p + 1),
        pest::error::InputLocation::Span((s, t)) => (s, t),
    };
    let message = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut expected: Vec<&str> = positives.iter().filter_map(|r| describe(*r)).collect();
            expected.sort();
            expected.dedup();
            match expected.len() {
                0 => "unexpected input".to_string(),
                1 => format!("expected {}", expected[0]),
                _ => {
                    let last = expected.pop().unwrap();
                    format!("expected {} or {}", expected.join(", "), last)
                }
            }
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    SyntaxError {
        span: Span { start, end },
        message,
    }
}

/// Human names of the rules pest can report as expected.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "the end of the statement",
        Rule::expr | Rule::term | Rule::unary | Rule::power | Rule::value => "an expression",
        Rule::number | Rule::int => "a number",
        Rule::ident => "a name",
        Rule::add_op | Rule::mul_op => "an operator",
        Rule::call | Rule::indexed => "a name",
        Rule::array => "an array `[...]`",
        Rule::optimizer_name => "an optimizer name",
        Rule::order_name => "a batch order name",
        Rule::dims | Rule::let_index => "`[`",
        Rule::binder => "an index `i` or `i in 1..n`",
        Rule::param_stmt
        | Rule::data_stmt
        | Rule::let_stmt
        | Rule::loss_stmt
        | Rule::decay_stmt
        | Rule::optimizer_stmt
        | Rule::momentum_stmt
        | Rule::rho_stmt
        | Rule::batches_stmt
        | Rule::order_stmt
        | Rule::kw_param
        | Rule::kw_data
        | Rule::kw_let
        | Rule::kw_loss
        | Rule::kw_decay
        | Rule::kw_optimizer
        | Rule::kw_momentum
        | Rule::kw_rho
        | Rule::kw_batches
        | Rule::kw_batch_order => {
            "a statement (param, data, let, loss, weight_decay, optimizer, momentum, rho_ratio, batches, batch_order)"
        }
        Rule::kw_in => "`in`",
        Rule::neg => "`-`",
        _ => return None,
    })
}

fn name(p: Pair<Rule>) -> Name {
    Name {
        text: p.as_str().to_string(),
        span: Span::of(&p),
    }
}

fn int(p: Pair<Rule>) -> Result<i64, SyntaxError> {
    p.as_str().parse().map_err(|_| SyntaxError {
        span: Span::of(&p),
        message: "this integer is too large".into(),
    })
}

fn stmt(p: Pair<Rule>) -> Result<Stmt, SyntaxError> {
    let rule = p.as_rule();
    let span = Span::of(&p);
    let mut it = p.into_inner().filter(|q| {
        !matches!(
            q.as_rule(),
            Rule::kw_param
                | Rule::kw_data
                | Rule::kw_let
                | Rule::kw_loss
                | Rule::kw_decay
                | Rule::kw_optimizer
                | Rule::kw_momentum
                | Rule::kw_rho
                | Rule::kw_batches
                | Rule::kw_batch_order
        )
    });
    Ok(match rule {
        Rule::param_stmt => Stmt::Param(it.map(decl).collect::<Result<_, _>>()?),
        Rule::data_stmt => Stmt::Data(it.map(decl).collect::<Result<_, _>>()?),
        Rule::let_stmt => {
            let n = name(it.next().unwrap());
            let mut indices = Vec::new();
            let mut next = it.next().unwrap();
            if next.as_rule() == Rule::let_index {
                indices = next.into_inner().map(name).collect();
                next = it.next().unwrap();
            }
            Stmt::Let {
                name: n,
                indices,
                body: expr(next)?,
            }
        }
        Rule::loss_stmt => Stmt::Loss {
            body: expr(it.next().unwrap())?,
            span,
        },
        Rule::decay_stmt => Stmt::Decay {
            body: expr(it.next().unwrap())?,
            span,
        },
        Rule::optimizer_stmt => Stmt::Optimizer {
            name: name(it.next().unwrap()),
            span,
        },
        Rule::momentum_stmt => Stmt::Momentum {
            body: expr(it.next().unwrap())?,
            span,
        },
        Rule::rho_stmt => Stmt::RhoRatio {
            body: expr(it.next().unwrap())?,
            span,
        },
        Rule::batches_stmt => Stmt::Batches {
            body: expr(it.next().unwrap())?,
            span,
        },
        Rule::order_stmt => Stmt::BatchOrder {
            name: name(it.next().unwrap()),
            span,
        },
        r => unreachable!("statement {r:?}"),
    })
}

fn decl(p: Pair<Rule>) -> Result<Decl, SyntaxError> {
    let mut it = p.into_inner();
    let n = name(it.next().unwrap());
    let mut dims = None;
    let mut value = None;
    for q in it {
        match q.as_rule() {
            Rule::dims => {
                let span = Span::of(&q);
                let ds = q
                    .into_inner()
                    .map(|d| {
                        let s = Span::of(&d);
                        match int(d)? {
                            n @ 1..=1_000_000 => Ok(n as usize),
                            _ => Err(SyntaxError {
                                span: s,
                                message: "an array size must be between 1 and 1000000".into(),
                            }),
                        }
                    })
                    .collect::<Result<_, _>>()?;
                dims = Some((ds, span));
            }
            Rule::value => value = Some(value_of(q)?),
            r => unreachable!("decl {r:?}"),
        }
    }
    Ok(Decl {
        name: n,
        dims,
        value,
    })
}

fn value_of(p: Pair<Rule>) -> Result<Value, SyntaxError> {
    let q = p.into_inner().next().unwrap();
    match q.as_rule() {
        Rule::array => {
            let span = Span::of(&q);
            Ok(Value::Array(
                q.into_inner().map(value_of).collect::<Result<_, _>>()?,
                span,
            ))
        }
        Rule::expr => expr(q).map(Value::Scalar),
        r => unreachable!("value {r:?}"),
    }
}

/// Builds an expression. Sums and products are sequences (folded left here); `^` nests.
fn expr(p: Pair<Rule>) -> Result<Expr, SyntaxError> {
    match p.as_rule() {
        Rule::expr | Rule::term => {
            let mut it = p.into_inner();
            let mut acc = expr(it.next().unwrap())?;
            while let Some(op) = it.next() {
                let rhs = expr(it.next().unwrap())?;
                let op = match op.as_str() {
                    "+" => BinOp::Add,
                    "-" => BinOp::Sub,
                    "*" => BinOp::Mul,
                    _ => BinOp::Div,
                };
                let span = acc.span().to(rhs.span());
                acc = Expr::Binary(op, Box::new(acc), Box::new(rhs), span);
            }
            Ok(acc)
        }
        Rule::unary => {
            let mut negs = Vec::new();
            let mut body = None;
            for q in p.into_inner() {
                if q.as_rule() == Rule::neg {
                    negs.push(Span::of(&q));
                } else {
                    body = Some(expr(q)?);
                }
            }
            let mut e = body.unwrap();
            for s in negs.into_iter().rev() {
                let span = s.to(e.span());
                e = Expr::Neg(Box::new(e), span);
            }
            Ok(e)
        }
        Rule::power => {
            let mut it = p.into_inner();
            let base = expr(it.next().unwrap())?;
            match it.next() {
                None => Ok(base),
                Some(q) => {
                    let exp = expr(q)?;
                    let span = base.span().to(exp.span());
                    Ok(Expr::Binary(
                        BinOp::Pow,
                        Box::new(base),
                        Box::new(exp),
                        span,
                    ))
                }
            }
        }
        Rule::number => {
            let span = Span::of(&p);
            parse_number(p.as_str())
                .map(|r| Expr::Num(r, span))
                .ok_or(SyntaxError {
                    span,
                    message: "this number's exponent is too large".into(),
                })
        }
        Rule::ident => Ok(Expr::Name(name(p))),
        Rule::indexed => {
            let span = Span::of(&p);
            let mut it = p.into_inner();
            let n = name(it.next().unwrap());
            let idx = it.map(expr).collect::<Result<_, _>>()?;
            Ok(Expr::Index(n, idx, span))
        }
        Rule::call => {
            let span = Span::of(&p);
            let mut it = p.into_inner();
            let n = name(it.next().unwrap());
            let args = it
                .map(|q| {
                    if q.as_rule() == Rule::binder {
                        let s = Span::of(&q);
                        let mut b = q.into_inner();
                        let v = name(b.next().unwrap());
                        let _kw = b.next();
                        let lo = int(b.next().unwrap())?;
                        let hi = int(b.next().unwrap())?;
                        Ok(Arg::Binder(v, lo, hi, s))
                    } else {
                        expr(q).map(Arg::Expr)
                    }
                })
                .collect::<Result<_, _>>()?;
            Ok(Expr::Call(n, args, span))
        }
        r => unreachable!("expression {r:?}"),
    }
}

/// The exact value of a decimal literal such as `0.6`, `1e-3`, `2.5E+2`.
///
/// Exponents beyond ±10000 are refused (None) rather than building enormous integers.
pub fn parse_number(s: &str) -> Option<BigRational> {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    // The exponent as written; the digits add at most the length of the literal to it.
    if exp.unsigned_abs() > 10_000 {
        return None;
    }
    let (int_part, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: BigInt = format!("{int_part}{frac}0").parse().ok()?;
    let exp = exp - frac.len() as i64 - 1;
    let ten = BigRational::from_integer(10.into());
    let scale = num_traits::pow(ten, exp.unsigned_abs() as usize);
    let d = BigRational::from_integer(digits);
    Some(if exp >= 0 {
        d * scale
    } else if d.is_zero() {
        BigRational::zero()
    } else {
        d / scale
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> BigRational {
        BigRational::new(n.into(), d.into())
    }

    #[test]
    fn numbers_are_exact() {
        assert_eq!(parse_number("0.6"), Some(q(3, 5)));
        assert_eq!(parse_number("1e-3"), Some(q(1, 1000)));
        assert_eq!(parse_number("2.5E+2"), Some(q(250, 1)));
        assert_eq!(parse_number(".5"), Some(q(1, 2)));
        assert_eq!(parse_number("12"), Some(q(12, 1)));
        assert_eq!(parse_number("0"), Some(BigRational::zero()));
        assert_eq!(parse_number("1e99999"), None);
        assert!(parse_number("3").unwrap().is_integer());
    }
}
