//! The check as an SVG picture: error against GD step for each order (at the largest η), and
//! error against η on log-log axes with the fitted slopes; then, for each tracked quantity, its
//! value against GD step along GD (markers) and along the EoM at each order (lines).

use std::fmt::Write;

use crate::numeric::{Check, Tracked};

const W: f64 = 460.0;
const H: f64 = 340.0;
const MARGIN: (f64, f64, f64, f64) = (70.0, 20.0, 40.0, 50.0); // left, right, top, bottom
const COLOURS: [&str; 8] = [
    "#1b1b1b", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
];
/// GD's markers in the tracked-quantity panels.
const GD_COLOUR: &str = "#7f7f7f";
/// Most GD markers drawn along a run (more would merge into a band).
const MAX_MARKERS: usize = 60;

/// Axis range in log10 of the positive values, widened to whole decades.
fn decades(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| *v > 0.0 && v.is_finite())
        .map(f64::log10)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    (lo.is_finite()).then(|| (lo.floor(), hi.ceil().max(lo.floor() + 1.0)))
}

/// Linear axis range of the finite values, padded; a flat set (a conserved quantity) gets a
/// range around it wide enough to show it flat.
fn linear_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if !lo.is_finite() {
        return None;
    }
    let span = hi - lo;
    let scale = lo.abs().max(hi.abs());
    if span <= 1e-9 * scale.max(1.0) {
        let half = (0.05 * scale).max(1e-6);
        let mid = (lo + hi) / 2.0;
        Some((mid - half, mid + half))
    } else {
        Some((lo - 0.08 * span, hi + 0.08 * span))
    }
}

/// Text safe inside an SVG element or attribute.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A tick label on a linear axis whose ticks are `step` apart.
fn tick_label(x: f64, step: f64) -> String {
    // A tick that is 0 but for rounding reads 0.
    if x.abs() < 1e-9 * step.abs() {
        return "0".into();
    }
    let decimals = (1.0 - step.abs().log10().floor()).max(0.0);
    if decimals > 6.0 || x.abs() >= 1e6 {
        format!("{x:.2e}")
    } else {
        format!("{x:.*}", decimals as usize)
    }
}

struct Panel {
    x0: f64,
    xr: (f64, f64),
    yr: (f64, f64),
    xlog: bool,
    ylog: bool,
}

impl Panel {
    fn px(&self, x: f64) -> f64 {
        let x = if self.xlog { x.log10() } else { x };
        self.x0 + MARGIN.0 + (x - self.xr.0) / (self.xr.1 - self.xr.0) * (W - MARGIN.0 - MARGIN.1)
    }
    fn py(&self, y: f64) -> f64 {
        let y = if self.ylog { y.log10() } else { y };
        MARGIN.2 + (self.yr.1 - y) / (self.yr.1 - self.yr.0) * (H - MARGIN.2 - MARGIN.3)
    }
    fn frame(&self, out: &mut String, title: &str, xlabel: &str, ylabel: &str) {
        let (l, t) = (self.x0 + MARGIN.0, MARGIN.2);
        let (r, b) = (self.x0 + W - MARGIN.1, H - MARGIN.3);
        let _ = writeln!(
            out,
            r#"<rect x="{l}" y="{t}" width="{}" height="{}" fill="none" stroke="black"/>"#,
            r - l,
            b - t
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
            (l + r) / 2.0,
            escape(title)
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" font-size="12">{}</text>"#,
            (l + r) / 2.0,
            H - 12.0,
            escape(xlabel)
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" font-size="12" transform="rotate(-90 {} {})">{}</text>"#,
            self.x0 + 16.0,
            (t + b) / 2.0,
            self.x0 + 16.0,
            (t + b) / 2.0,
            escape(ylabel)
        );
        let yticks: Vec<(f64, String)> = if self.ylog {
            ((self.yr.0 as i32)..=(self.yr.1 as i32))
                .map(|d| (10f64.powi(d), format!("1e{d}")))
                .collect()
        } else {
            let step = (self.yr.1 - self.yr.0) / 4.0;
            (0..=4)
                .map(|i| {
                    let y = self.yr.0 + step * i as f64;
                    (y, tick_label(y, step))
                })
                .collect()
        };
        for (y, label) in yticks {
            let y = self.py(y);
            let _ = writeln!(
                out,
                r#"<line x1="{l}" x2="{}" y1="{y}" y2="{y}" stroke="black"/><text x="{}" y="{}" text-anchor="end" font-size="11">{label}</text>"#,
                l + 5.0,
                l - 4.0,
                y + 4.0
            );
        }
        let ticks: Vec<(f64, String)> = if self.xlog {
            ((self.xr.0 as i32)..=(self.xr.1 as i32))
                .map(|d| (10f64.powi(d), format!("1e{d}")))
                .collect()
        } else {
            (0..=4)
                .map(|i| {
                    let x = self.xr.0 + (self.xr.1 - self.xr.0) * i as f64 / 4.0;
                    let label = if x.fract() == 0.0 {
                        format!("{x}")
                    } else {
                        format!("{x:.1}")
                    };
                    (x, label)
                })
                .collect()
        };
        for (x, label) in ticks {
            let px = self.px(x);
            let _ = writeln!(
                out,
                r#"<line x1="{px}" x2="{px}" y1="{b}" y2="{}" stroke="black"/><text x="{px}" y="{}" text-anchor="middle" font-size="11">{label}</text>"#,
                b - 5.0,
                b + 15.0
            );
        }
    }
}

/// The name of order K in legends.
fn order_name(k: usize) -> String {
    if k == 0 {
        "gradient flow".to_string()
    } else {
        format!("EoM K = {k}")
    }
}

/// The SVG document: two panels, and one more per tracked quantity.
pub fn plot_svg(check: &Check) -> String {
    let run = super::run_label(check.optimizer);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{H}" font-family="sans-serif">"#,
        (2 + check.tracked.len()) as f64 * W
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let orders = check.slopes.len();
    // Left: error along the trajectory at the largest η.
    let all = check.trajectories.iter().flatten().flatten().copied();
    if let Some(yr) = decades(all) {
        let p = Panel {
            x0: 0.0,
            xr: (0.0, check.steps as f64),
            yr,
            xlog: false,
            ylog: true,
        };
        p.frame(
            &mut out,
            &format!("distance to {run} along the run (η = {})", check.lr),
            &format!("{run} step n"),
            &format!("error ‖θ_EoM − θ_{run}‖"),
        );
        for (k, traj) in check.trajectories.iter().enumerate() {
            let pts: Vec<String> = traj
                .iter()
                .enumerate()
                .filter_map(|(n, e)| {
                    e.filter(|e| *e > 0.0)
                        .map(|e| format!("{:.1},{:.1}", p.px((n + 1) as f64), p.py(e)))
                })
                .collect();
            polyline(&mut out, COLOURS[k % 8], &pts);
        }
    }
    // Right: error against η with the fitted slope.
    let errors = check.rows.iter().filter_map(|r| r.error);
    let lrs = check.rows.iter().map(|r| r.lr);
    if let (Some(yr), Some(xr)) = (decades(errors), decades(lrs)) {
        let p = Panel {
            x0: W,
            xr,
            yr,
            xlog: true,
            ylog: true,
        };
        p.frame(
            &mut out,
            &format!("error at T = {} against η", check.horizon),
            "learning rate η (log)",
            &format!("error ‖θ_EoM − θ_{run}‖"),
        );
        for k in 0..orders {
            let pts: Vec<(f64, f64)> = check
                .rows
                .iter()
                .filter(|r| r.order == k)
                .filter_map(|r| r.error.filter(|e| *e > 0.0).map(|e| (p.px(r.lr), p.py(e))))
                .collect();
            let line: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            polyline(&mut out, COLOURS[k % 8], &line);
            for (x, y) in pts {
                let _ = writeln!(
                    out,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{}"/>"#,
                    COLOURS[k % 8]
                );
            }
        }
        let entries: Vec<Entry> = (0..orders)
            .map(|k| Entry {
                colour: COLOURS[k % 8],
                marker: false,
                label: match check.slopes[k] {
                    Some(s) => format!("{}: slope {s:.2} (expected {})", order_name(k), k + 1),
                    None => format!("{}: no slope (floor)", order_name(k)),
                },
            })
            .collect();
        legend(&mut out, W + W - MARGIN.1 - 245.0, Corner::Bottom, &entries);
    }
    for (i, t) in check.tracked.iter().enumerate() {
        tracked_panel(&mut out, check, t, (2 + i) as f64 * W);
    }
    out.push_str("</svg>\n");
    out
}

/// A tracked quantity against GD step: GD as markers, each EoM order as a line.
fn tracked_panel(out: &mut String, check: &Check, t: &Tracked, x0: f64) {
    let values = t.gd.iter().chain(t.eom.iter().flatten()).flatten().copied();
    let Some(yr) = linear_range(values) else {
        return;
    };
    let n = t.gd.len().saturating_sub(1);
    let p = Panel {
        x0,
        xr: (0.0, n.max(1) as f64),
        yr,
        xlog: false,
        ylog: false,
    };
    p.frame(
        out,
        &format!("{} along the run (η = {})", t.label, check.lr),
        &format!("{} step n", super::run_label(check.optimizer)),
        &t.label,
    );
    for (k, values) in t.eom.iter().enumerate() {
        let pts: Vec<String> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", p.px(i as f64), p.py(v))))
            .collect();
        polyline(out, COLOURS[k % 8], &pts);
    }
    let every = n.div_ceil(MAX_MARKERS).max(1);
    for (i, v) in t.gd.iter().enumerate() {
        if let Some(v) = v.filter(|_| i % every == 0 || i == n) {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{GD_COLOUR}"/>"#,
                p.px(i as f64),
                p.py(v)
            );
        }
    }
    // The legend goes to the left, above or below where the curves start.
    let start = t.gd.first().copied().flatten();
    let corner = match start {
        Some(v) if v > (yr.0 + yr.1) / 2.0 => Corner::Bottom,
        _ => Corner::Top,
    };
    let mut entries = vec![Entry {
        colour: GD_COLOUR,
        marker: true,
        label: super::run_label(check.optimizer),
    }];
    entries.extend((0..t.eom.len()).map(|k| Entry {
        colour: COLOURS[k % 8],
        marker: false,
        label: order_name(k),
    }));
    legend(out, x0 + MARGIN.0 + 8.0, corner, &entries);
}

/// One line of a legend.
struct Entry {
    colour: &'static str,
    /// A marker rather than a line.
    marker: bool,
    label: String,
}

/// Where in a panel a legend goes.
enum Corner {
    Top,
    Bottom,
}

/// A legend whose left edge is at `x`, in the panel's top or bottom corner.
fn legend(out: &mut String, x: f64, corner: Corner, entries: &[Entry]) {
    let count = entries.len();
    for (i, e) in entries.iter().enumerate() {
        let y = match corner {
            Corner::Top => MARGIN.2 + 14.0 + 16.0 * i as f64,
            Corner::Bottom => H - MARGIN.3 - 10.0 - 16.0 * (count - 1 - i) as f64,
        };
        if e.marker {
            let _ = write!(
                out,
                r#"<circle cx="{}" cy="{y}" r="3" fill="{}"/>"#,
                x + 9.0,
                e.colour
            );
        } else {
            let _ = write!(
                out,
                r#"<line x1="{x}" x2="{}" y1="{y}" y2="{y}" stroke="{}" stroke-width="2"/>"#,
                x + 18.0,
                e.colour
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" font-size="11">{}</text>"#,
            x + 24.0,
            y + 4.0,
            escape(&e.label)
        );
    }
}

/// A line through `points` ("x,y" pairs) in `colour`.
fn polyline(out: &mut String, colour: &str, points: &[String]) {
    let _ = writeln!(
        out,
        r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
        points.join(" ")
    );
}
