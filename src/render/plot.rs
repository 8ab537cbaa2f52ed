//! The check as an SVG picture: error against GD step for each order (at the largest η), and
//! error against η on log-log axes with the fitted slopes.

use std::fmt::Write;

use crate::numeric::Check;

const W: f64 = 460.0;
const H: f64 = 340.0;
const MARGIN: (f64, f64, f64, f64) = (70.0, 20.0, 40.0, 50.0); // left, right, top, bottom
const COLOURS: [&str; 8] = [
    "#1b1b1b", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
];

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

struct Panel {
    x0: f64,
    xr: (f64, f64),
    yr: (f64, f64),
    xlog: bool,
}

impl Panel {
    fn px(&self, x: f64) -> f64 {
        let x = if self.xlog { x.log10() } else { x };
        self.x0 + MARGIN.0 + (x - self.xr.0) / (self.xr.1 - self.xr.0) * (W - MARGIN.0 - MARGIN.1)
    }
    fn py(&self, y: f64) -> f64 {
        let y = y.log10();
        MARGIN.2 + (self.yr.1 - y) / (self.yr.1 - self.yr.0) * (H - MARGIN.2 - MARGIN.3)
    }
    fn frame(&self, out: &mut String, title: &str, xlabel: &str) {
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
            r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{title}</text>"#,
            (l + r) / 2.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" font-size="12">{xlabel}</text>"#,
            (l + r) / 2.0,
            H - 12.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="middle" font-size="12" transform="rotate(-90 {} {})">error ‖θ_EoM − θ_GD‖</text>"#,
            self.x0 + 16.0,
            (t + b) / 2.0,
            self.x0 + 16.0,
            (t + b) / 2.0
        );
        for d in (self.yr.0 as i32)..=(self.yr.1 as i32) {
            let y = self.py(10f64.powi(d));
            let _ = writeln!(
                out,
                r#"<line x1="{l}" x2="{}" y1="{y}" y2="{y}" stroke="black"/><text x="{}" y="{}" text-anchor="end" font-size="11">1e{d}</text>"#,
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

/// The SVG document.
pub fn plot_svg(check: &Check) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{H}" font-family="sans-serif">"#,
        2.0 * W
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
        };
        p.frame(
            &mut out,
            &format!("distance to GD along the run (η = {})", check.lr),
            "GD step n",
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
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
                COLOURS[k % 8],
                pts.join(" ")
            );
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
        };
        p.frame(
            &mut out,
            &format!("error at T = {} against η", check.horizon),
            "learning rate η (log)",
        );
        for k in 0..orders {
            let pts: Vec<(f64, f64)> = check
                .rows
                .iter()
                .filter(|r| r.order == k)
                .filter_map(|r| r.error.filter(|e| *e > 0.0).map(|e| (p.px(r.lr), p.py(e))))
                .collect();
            let line: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5" points="{}"/>"#,
                COLOURS[k % 8],
                line.join(" ")
            );
            for (x, y) in pts {
                let _ = writeln!(
                    out,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{}"/>"#,
                    COLOURS[k % 8]
                );
            }
        }
        legend(&mut out, W, orders, |k| {
            let name = if k == 0 {
                "gradient flow".to_string()
            } else {
                format!("EoM K = {k}")
            };
            match check.slopes[k] {
                Some(s) => format!("{name}: slope {s:.2} (expected {})", k + 1),
                None => format!("{name}: no slope (floor)"),
            }
        });
    }
    out.push_str("</svg>\n");
    out
}

/// The legend, in the panel's lower right corner (where small errors at large η never are).
fn legend(out: &mut String, x0: f64, orders: usize, label: impl Fn(usize) -> String) {
    for k in 0..orders {
        let y = H - MARGIN.3 - 10.0 - 16.0 * (orders - 1 - k) as f64;
        let x = x0 + W - MARGIN.1 - 245.0;
        let _ = writeln!(
            out,
            r#"<line x1="{x}" x2="{}" y1="{y}" y2="{y}" stroke="{}" stroke-width="2"/><text x="{}" y="{}" font-size="11">{}</text>"#,
            x + 18.0,
            COLOURS[k % 8],
            x + 24.0,
            y + 4.0,
            label(k)
        );
    }
}
