//! Elementary differentials of trees, in text (`H g`, `∇³f(g, g)`) and LaTeX.

use crate::series::{Forest, TreeId};

/// The elementary differential of a tree in text: a leaf is `g`, a node with one child is
/// `H` applied to it, a node with m ≥ 2 children is `∇^{m+1}f(c_1, …, c_m)`.
///
/// ```
/// use eomderive::render::trees::text;
/// let s = eomderive::generic(3).unwrap();
/// let t: Vec<String> = s.xi[2].iter().map(|(t, _)| text(&s.forest, *t)).collect();
/// assert_eq!(t, ["∇³f(H g, g)", "H ∇³f(g, g)", "H H H g"]);
/// ```
pub fn text(forest: &Forest, t: TreeId) -> String {
    let children = forest.children(t);
    match children.len() {
        0 => "g".into(),
        1 => format!("H {}", text(forest, children[0])),
        m => {
            let args: Vec<String> = children.iter().map(|&c| text(forest, c)).collect();
            format!("∇{}f({})", superscript(m + 1), args.join(", "))
        }
    }
}

/// The elementary differential in LaTeX: `\nabla f`, `\nabla^2 f\,\nabla f`,
/// `\nabla^3 f[\nabla f, \nabla f]`.
///
/// ```
/// use eomderive::render::trees::latex;
/// let s = eomderive::generic(2).unwrap();
/// assert_eq!(latex(&s.forest, s.xi[1][0].0), r"\nabla^{3} f[\nabla f, \nabla f]");
/// ```
pub fn latex(forest: &Forest, t: TreeId) -> String {
    let children = forest.children(t);
    match children.len() {
        0 => r"\nabla f".into(),
        1 => format!(r"\nabla^{{2}} f\,{}", latex(forest, children[0])),
        m => {
            let args: Vec<String> = children.iter().map(|&c| latex(forest, c)).collect();
            format!(r"\nabla^{{{}}} f[{}]", m + 1, args.join(", "))
        }
    }
}

/// `n` in superscript digits (`²`, `¹²`).
pub(crate) fn superscript(n: usize) -> String {
    const DIGITS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    n.to_string()
        .bytes()
        .map(|b| DIGITS[(b - b'0') as usize])
        .collect()
}
