//! The node type of expressions, as an egg language.

use std::fmt;
use std::str::FromStr;

use num_rational::BigRational;
use num_traits::{One, Signed, Zero};

/// An exact rational constant (a leaf of [`Op`]). Displays as `3/5`, `-2`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rational(pub BigRational);

impl Rational {
    /// The constant as a `BigRational`.
    pub fn value(&self) -> &BigRational {
        &self.0
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Rational {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        // Only plain integers and `p/q`: anything else is not a constant leaf.
        let ok = |t: &str| {
            let t = t.strip_prefix('-').unwrap_or(t);
            !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
        };
        let (n, d) = s.split_once('/').unwrap_or((s, "1"));
        if !ok(n) || !ok(d) || d.starts_with('-') {
            return Err(format!("not a rational: {s}"));
        }
        let d: num_bigint::BigInt = d.parse().map_err(|_| s.to_string())?;
        if d.is_zero() {
            return Err(format!("zero denominator: {s}"));
        }
        Ok(Rational(BigRational::new(
            n.parse().map_err(|_| s.to_string())?,
            d,
        )))
    }
}

/// A scalar variable: parameter `i` of the model (0-based), or a placeholder direction used
/// internally by differentiation (never visible in results).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VarId(pub u32);

impl fmt::Display for VarId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl FromStr for VarId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        s.strip_prefix('v')
            .and_then(|n| n.parse().ok())
            .map(VarId)
            .ok_or(())
    }
}

/// The smooth elementary functions of the loss language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Func {
    /// e^x
    Exp,
    /// natural logarithm
    Log,
    /// square root
    Sqrt,
    /// sine
    Sin,
    /// cosine
    Cos,
    /// tangent
    Tan,
    /// hyperbolic tangent
    Tanh,
    /// logistic function 1/(1+e^{-x})
    Sigmoid,
    /// log(1+e^x)
    Softplus,
    /// log(1+x)
    Log1p,
}

impl Func {
    /// Every function, in the order the documentation lists them.
    pub const ALL: [Func; 10] = [
        Func::Exp,
        Func::Log,
        Func::Sqrt,
        Func::Sin,
        Func::Cos,
        Func::Tan,
        Func::Tanh,
        Func::Sigmoid,
        Func::Softplus,
        Func::Log1p,
    ];

    /// The name used in the loss language and in text output.
    pub fn name(self) -> &'static str {
        match self {
            Func::Exp => "exp",
            Func::Log => "log",
            Func::Sqrt => "sqrt",
            Func::Sin => "sin",
            Func::Cos => "cos",
            Func::Tan => "tan",
            Func::Tanh => "tanh",
            Func::Sigmoid => "sigmoid",
            Func::Softplus => "softplus",
            Func::Log1p => "log1p",
        }
    }

    /// The function with this name, if any.
    ///
    /// ```
    /// use eomderive::expr::Func;
    /// assert_eq!(Func::from_name("tanh"), Some(Func::Tanh));
    /// assert_eq!(Func::from_name("relu"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Func> {
        Func::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Func {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Func::from_name(s).ok_or(())
    }
}

egg::define_language! {
    /// One node of a scalar expression. Children are ids of earlier nodes.
    pub enum Op {
        "+" = Add([egg::Id; 2]),
        "-" = Sub([egg::Id; 2]),
        "*" = Mul([egg::Id; 2]),
        "/" = Div([egg::Id; 2]),
        "^" = Pow([egg::Id; 2]),
        "neg" = Neg(egg::Id),
        Call(Func, [egg::Id; 1]),
        Num(Rational),
        Var(VarId),
    }
}

impl Op {
    /// A constant node.
    pub fn num(r: BigRational) -> Op {
        Op::Num(Rational(r))
    }

    /// The constant, if this node is one.
    pub fn as_num(&self) -> Option<&BigRational> {
        match self {
            Op::Num(r) => Some(&r.0),
            _ => None,
        }
    }

    /// True for the constant 0.
    pub fn is_zero(&self) -> bool {
        self.as_num().is_some_and(Zero::is_zero)
    }

    /// True for the constant 1.
    pub fn is_one(&self) -> bool {
        self.as_num().is_some_and(One::is_one)
    }

    /// True for a negative constant.
    pub fn is_negative_num(&self) -> bool {
        self.as_num().is_some_and(Signed::is_negative)
    }
}
