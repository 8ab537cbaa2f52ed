//! The rewrite rules of the simplifier: algebra over exact rationals and the identities of the
//! loss language's functions. Constant folding is not a rule but the e-class analysis
//! ([`super::simplify`]).

use egg::{rewrite as rw, Rewrite};

use super::simplify::ConstFold;
use super::Op;

/// The rule set. Canonicalising rules (`a - b → a + -1 b`, `a / b → a b^-1`) let the
/// factoring rules see through subtraction and division; their reverses let extraction return
/// the cheaper written form.
pub fn rules() -> Vec<Rewrite<Op, ConstFold>> {
    vec![
        // Commutativity and associativity.
        rw!("comm-add"; "(+ ?a ?b)" => "(+ ?b ?a)"),
        rw!("comm-mul"; "(* ?a ?b)" => "(* ?b ?a)"),
        rw!("assoc-add"; "(+ ?a (+ ?b ?c))" => "(+ (+ ?a ?b) ?c)"),
        rw!("assoc-add-r"; "(+ (+ ?a ?b) ?c)" => "(+ ?a (+ ?b ?c))"),
        rw!("assoc-mul"; "(* ?a (* ?b ?c))" => "(* (* ?a ?b) ?c)"),
        rw!("assoc-mul-r"; "(* (* ?a ?b) ?c)" => "(* ?a (* ?b ?c))"),
        // Subtraction, negation and division in canonical form, and back.
        rw!("sub-canon"; "(- ?a ?b)" => "(+ ?a (* -1 ?b))"),
        rw!("sub-back"; "(+ ?a (* -1 ?b))" => "(- ?a ?b)"),
        rw!("neg-canon"; "(neg ?a)" => "(* -1 ?a)"),
        rw!("neg-back"; "(* -1 ?a)" => "(neg ?a)"),
        rw!("div-canon"; "(/ ?a ?b)" => "(* ?a (^ ?b -1))"),
        rw!("div-back"; "(* ?a (^ ?b -1))" => "(/ ?a ?b)"),
        rw!("recip-back"; "(^ ?b -1)" => "(/ 1 ?b)"),
        // Identities.
        rw!("add-0"; "(+ ?a 0)" => "?a"),
        rw!("mul-1"; "(* ?a 1)" => "?a"),
        rw!("mul-0"; "(* ?a 0)" => "0"),
        rw!("pow-1"; "(^ ?a 1)" => "?a"),
        // Collecting like terms and factors.
        rw!("factor"; "(+ (* ?a ?b) (* ?a ?c))" => "(* ?a (+ ?b ?c))"),
        rw!("factor-one"; "(+ ?a (* ?a ?c))" => "(* ?a (+ 1 ?c))"),
        rw!("add-self"; "(+ ?a ?a)" => "(* 2 ?a)"),
        rw!("mul-self"; "(* ?a ?a)" => "(^ ?a 2)"),
        rw!("pow-mul"; "(* (^ ?a ?n) ?a)" => "(^ ?a (+ ?n 1))"),
        rw!("pow-pow"; "(* (^ ?a ?n) (^ ?a ?m))" => "(^ ?a (+ ?n ?m))"),
        rw!("square-neg"; "(^ (neg ?a) 2)" => "(^ ?a 2)"),
        // The functions: symmetry, inverses, and the derivative identities' other forms.
        rw!("tanh-odd"; "(tanh (neg ?x))" => "(neg (tanh ?x))"),
        rw!("sin-odd"; "(sin (neg ?x))" => "(neg (sin ?x))"),
        rw!("tan-odd"; "(tan (neg ?x))" => "(neg (tan ?x))"),
        rw!("cos-even"; "(cos (neg ?x))" => "(cos ?x)"),
        rw!("sigmoid-odd"; "(sigmoid (neg ?x))" => "(- 1 (sigmoid ?x))"),
        rw!("sigmoid-odd-r"; "(- 1 (sigmoid ?x))" => "(sigmoid (neg ?x))"),
        rw!("softplus-diff"; "(- (softplus ?x) (softplus (neg ?x)))" => "?x"),
        rw!("exp-log"; "(exp (log ?x))" => "?x"),
        rw!("log-exp"; "(log (exp ?x))" => "?x"),
        rw!("exp-add"; "(* (exp ?a) (exp ?b))" => "(exp (+ ?a ?b))"),
        rw!("sqrt-sq"; "(^ (sqrt ?x) 2)" => "?x"),
        rw!("sqrt-sq-mul"; "(* (sqrt ?x) (sqrt ?x))" => "?x"),
    ]
}
