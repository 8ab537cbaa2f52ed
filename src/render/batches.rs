//! Minibatch SGD's counter terms on coloured trees, in text, LaTeX and JSON: each pattern's
//! elementary differential with batch indices (`H_a g_b`, `\nabla^{2} f_{a}\,\nabla f_{b}`),
//! summed over increasing (cyclic) or distinct (shuffled) batches.

use std::fmt::Write as _;

use num_rational::BigRational;
use serde::Serialize;

use super::latex::latex_rational;
use super::trees::superscript;
use crate::series::{BatchOrder, ColouredForest, ColouredId, SgdSeries};

/// Index letters of a pattern's colours 0, 1, 2, ….
const LETTERS: [&str; 8] = ["a", "b", "c", "d", "e", "f'", "g'", "h'"];

/// The elementary differential of a coloured tree in text, colour c written `name(c)`:
/// `g_a`, `H_a g_b`, `∇³f_a(g_b, g_c)`.
///
/// ```
/// use eomderive::series::ColouredForest;
/// let mut f = ColouredForest::new();
/// let (a, b) = (f.leaf(0), f.leaf(1));
/// let t = f.node(0, vec![b, a]);
/// let name = |c: u16| ["a", "b"][c as usize].to_string();
/// assert_eq!(eomderive::render::coloured_text(&f, t, &name), "∇³f_a(g_a, g_b)");
/// ```
pub fn coloured_text(
    forest: &ColouredForest,
    t: ColouredId,
    name: &dyn Fn(u16) -> String,
) -> String {
    coloured(forest, t, name, false)
}

/// The same in LaTeX: `\nabla f_{a}`, `\nabla^{2} f_{a}\,\nabla f_{b}`,
/// `\nabla^{3} f_{a}[\nabla f_{b}, \nabla f_{c}]`.
pub fn coloured_latex(
    forest: &ColouredForest,
    t: ColouredId,
    name: &dyn Fn(u16) -> String,
) -> String {
    coloured(forest, t, name, true)
}

fn coloured(
    forest: &ColouredForest,
    t: ColouredId,
    name: &dyn Fn(u16) -> String,
    latex: bool,
) -> String {
    let children = forest.children(t);
    let c = name(forest.colour(t));
    let args: Vec<String> = children
        .iter()
        .map(|&x| coloured(forest, x, name, latex))
        .collect();
    match (children.len(), latex) {
        (0, false) => format!("g_{c}"),
        (0, true) => format!(r"\nabla f_{{{c}}}"),
        (1, false) => format!("H_{c} {}", args[0]),
        (1, true) => format!(r"\nabla^{{2}} f_{{{c}}}\,{}", args[0]),
        (m, false) => format!("∇{}f_{c}({})", superscript(m + 1), args.join(", ")),
        (m, true) => format!(r"\nabla^{{{}}} f_{{{c}}}[{}]", m + 1, args.join(", ")),
    }
}

fn letter(c: u16) -> String {
    LETTERS
        .get(c as usize)
        .map_or_else(|| format!("a{c}"), |l| l.to_string())
}

/// The sum over a pattern's batches: `Σ_a`, `Σ_{a<b}`, `Σ_{a≠b}`, `Σ_{a,b,c distinct}`.
fn sum_sign(order: BatchOrder, p: usize, latex: bool) -> String {
    let names: Vec<String> = (0..p as u16).map(letter).collect();
    let (sep, sigma) = if latex { (", ", r"\sum") } else { (",", "Σ") };
    let under = match (p, order) {
        (1, _) => names[0].clone(),
        (_, BatchOrder::Cyclic) => names.join(if latex { " < " } else { "<" }),
        (2, BatchOrder::Shuffled) => {
            format!(
                "{}{}{}",
                names[0],
                if latex { r" \neq " } else { "≠" },
                names[1]
            )
        }
        (_, BatchOrder::Shuffled) if latex => format!(r"{}\ \mathrm{{distinct}}", names.join(sep)),
        (_, BatchOrder::Shuffled) => format!("{} distinct", names.join(sep)),
    };
    if latex {
        format!(r"{sigma}_{{{under}}}")
    } else if p == 1 {
        format!("{sigma}_{under}")
    } else {
        format!("{sigma}_{{{under}}}")
    }
}

/// One printed term per pattern: (coefficient of the sum over its batches, the sum).
fn terms(series: &mut SgdSeries, k: usize, latex: bool) -> Vec<(BigRational, String)> {
    let m = series.batches;
    let patterns = series.xi[k].clone();
    patterns
        .into_iter()
        .map(|(t, c)| {
            // A sum over distinct batches meets each tree once per symmetry of its colours.
            let mut c = c / BigRational::from_integer((series.symmetry(t) as i64).into());
            if let Some(m) = m {
                c /= BigRational::from_integer((m as i64).into());
            }
            let p = series.forest.colour_count(t);
            let tree = if latex {
                coloured_latex(&series.forest, t, &letter)
            } else {
                coloured_text(&series.forest, t, &letter)
            };
            let sum = sum_sign(series.order, p, latex);
            let joined = format!("{sum} {tree}");
            (c, joined)
        })
        .collect()
}

fn header(series: &SgdSeries) -> String {
    let batches = match series.batches {
        None => "m batches".to_string(),
        Some(1) => "1 batch".to_string(),
        Some(m) => format!("{m} batches"),
    };
    let order = match series.order {
        BatchOrder::Cyclic => {
            "cyclic order: batches 1..m in every epoch; a < b means batch a comes first"
        }
        BatchOrder::Shuffled => {
            "shuffled order: the mean iterate over all orders; sums run over distinct batches"
        }
    };
    format!(
        "optimizer: sgd ({batches}, {order}), dθ/dt = -g - η ξ_1 - η^2 ξ_2 - ...\n\
         with f = (1/m) Σ_a f_a, g_a = ∇f_a, H_a = ∇²f_a (ξ_k is the field of an epoch of m steps, time m η)\n"
    )
}

/// SGD's counter terms in text: a header naming the batches, the order and the notation, then
/// one line per ξ_k. For every m the sums carry a factor 1/m in front; for a given m the
/// coefficients include it.
///
/// ```
/// use eomderive::series::{sgd_series, BatchOrder};
/// let s = sgd_series(BatchOrder::Shuffled, 1).unwrap();
/// assert!(eomderive::render::sgd_text(&s).ends_with("ξ_1 = 1/m (1/2 Σ_a H_a g_a)\n"));
/// let s = sgd_series(BatchOrder::Cyclic, 1).unwrap().with_batches(4);
/// assert!(eomderive::render::sgd_text(&s).ends_with("ξ_1 = 1/8 Σ_a H_a g_a + 1/8 Σ_{a<b} H_a g_b - 1/8 Σ_{a<b} H_b g_a\n"));
/// ```
pub fn sgd_text(series: &SgdSeries) -> String {
    let mut series = series.clone();
    let mut s = header(&series);
    for k in 0..series.xi.len() {
        let sum = super::signed_terms(&terms(&mut series, k, false), |c| c.to_string());
        let _ = match series.batches {
            Some(_) => writeln!(s, "ξ_{} = {sum}", k + 1),
            None => writeln!(s, "ξ_{} = 1/m ({sum})", k + 1),
        };
    }
    s
}

/// SGD's counter terms in LaTeX, one aligned row per ξ_k (after the leading term).
///
/// ```
/// use eomderive::series::{sgd_series, BatchOrder};
/// let s = sgd_series(BatchOrder::Shuffled, 1).unwrap();
/// let tex = eomderive::render::sgd_latex(&s);
/// assert!(tex.contains(r"\xi_{1} &= \frac{1}{m} \Bigl(\frac{1}{2} \sum_{a} \nabla^{2} f_{a}\,\nabla f_{a}\Bigr)"), "{tex}");
/// ```
pub fn sgd_latex(series: &SgdSeries) -> String {
    let mut series = series.clone();
    let mut rows = vec![r"F_{0} &= -\nabla f".to_string()];
    for k in 0..series.xi.len() {
        let sum = super::signed_terms(&terms(&mut series, k, true), latex_rational);
        rows.push(match series.batches {
            Some(_) => format!(r"\xi_{{{}}} &= {sum}", k + 1),
            None => format!(r"\xi_{{{}}} &= \frac{{1}}{{m}} \Bigl({sum}\Bigr)", k + 1),
        });
    }
    format!(
        "\\begin{{aligned}}\n{}\n\\end{{aligned}}\n",
        rows.join(" \\\\\n")
    )
}

#[derive(Serialize)]
struct Output {
    optimizer: serde_json::Value,
    leading: Leading,
    order: usize,
    /// `1/m` for the form for every m (each coefficient multiplies it), `1` for a given m.
    scale: String,
    generic: Vec<Order>,
}

#[derive(Serialize)]
struct Leading {
    coefficient: String,
    text: String,
    latex: String,
}

#[derive(Serialize)]
struct Order {
    k: usize,
    terms: Vec<Term>,
}

#[derive(Serialize)]
struct Term {
    /// The coefficient of the sum over the pattern's batches (times `scale`).
    coefficient: String,
    /// How many distinct batches the pattern involves.
    batches: usize,
    /// `increasing` (a < b < …, cyclic) or `distinct` (shuffled).
    sum: &'static str,
    text: String,
    latex: String,
}

/// SGD's counter terms as JSON: `optimizer` (`{"name": "sgd", "batches": m or "m", "order":
/// …}`), `leading`, `scale` and per ξ_k its terms.
///
/// ```
/// use eomderive::series::{sgd_series, BatchOrder};
/// let s = sgd_series(BatchOrder::Shuffled, 1).unwrap();
/// let v: serde_json::Value = serde_json::from_str(&eomderive::render::sgd_json(&s)).unwrap();
/// assert_eq!(v["optimizer"]["batches"], "m");
/// assert_eq!(v["generic"][0]["terms"][0]["coefficient"], "1/2");
/// assert_eq!(v["generic"][0]["terms"][0]["text"], "Σ_a H_a g_a");
/// ```
pub fn sgd_json(series: &SgdSeries) -> String {
    let mut series = series.clone();
    let mut optimizer = serde_json::Map::new();
    optimizer.insert("name".into(), "sgd".into());
    optimizer.insert(
        "batches".into(),
        series.batches.map_or("m".into(), serde_json::Value::from),
    );
    optimizer.insert("order".into(), series.order.name().into());
    let generic = (0..series.xi.len())
        .map(|k| {
            let text = terms(&mut series, k, false);
            let latex = terms(&mut series, k, true);
            let patterns = series.xi[k].clone();
            Order {
                k: k + 1,
                terms: patterns
                    .iter()
                    .zip(text.into_iter().zip(latex))
                    .map(|((t, _), ((c, text), (_, latex)))| Term {
                        coefficient: c.to_string(),
                        batches: series.forest.colour_count(*t),
                        sum: match series.order {
                            BatchOrder::Cyclic => "increasing",
                            BatchOrder::Shuffled => "distinct",
                        },
                        text,
                        latex,
                    })
                    .collect(),
            }
        })
        .collect();
    let out = Output {
        optimizer: serde_json::Value::Object(optimizer),
        leading: Leading {
            coefficient: "-1".into(),
            text: "-g".into(),
            latex: r"-\nabla f".into(),
        },
        order: series.xi.len(),
        scale: if series.batches.is_some() { "1" } else { "1/m" }.into(),
        generic,
    };
    let mut s = serde_json::to_string_pretty(&out).expect("plain data serialises");
    s.push('\n');
    s
}
