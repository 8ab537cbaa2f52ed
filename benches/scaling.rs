//! Scaling (issue 12): every stage of the pipeline as the input grows, with a fitted exponent
//! per stage (the least-squares slope of log(time) against log(size)).
//!
//! Two families, their loss text built here:
//!
//! - `quartic`: `param w[n]` / `loss = sum(i, w[i]^2)/2 + sum(i, w[i]^4)/4` at order 2 for
//!   n = 10², 10³, 10⁴, 10⁵, with an initial point so that the evaluation runs; size = n.
//! - `mlp`: tanh networks d→h→1 on N examples at order 3, data and weights from a small LCG;
//!   size = the program's operations (`stats.ops`).
//!
//! Per size: the stages of `derive` (`Derivation::stages`, default options but the order), the
//! renderers (`render::text`, `render::json`), emission (`render::emit`, Python), and the whole
//! process (`target/release/eomderive FILE --order K --format text|json > /dev/null`, wall time
//! and peak RSS from `/usr/bin/time -f %M`). The process table needs the release binary:
//! `cargo build --release` first.
//!
//! The shared `timing::median` times one closure; the stages need every run's samples, so
//! this bench keeps its own medians.
//!
//! `cargo bench --bench scaling [-- quartic|mlp]` prints Markdown tables (medians of repeated
//! runs, fewer at the larger sizes, one at n = 10⁵); BENCHMARKS.md records the figures.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eomderive::lang::Source;
use eomderive::render::{self, Target};
use eomderive::{derive, Options};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Least-squares slope of ln(y) against ln(x); `None` with fewer than two usable points.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .collect();
    if pts.len() < 2 {
        return None;
    }
    let n = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// A deterministic stream of two-decimal numbers in (−1, 1) (a 64-bit LCG, Knuth's MMIX
/// constants).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> String {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let k = ((self.0 >> 33) % 199) as i64 - 99; // −99..=99
        format!("{:.2}", k as f64 / 100.0)
    }

    fn vector(&mut self, n: usize) -> String {
        let v: Vec<String> = (0..n).map(|_| self.next()).collect();
        format!("[{}]", v.join(", "))
    }

    fn matrix(&mut self, rows: usize, cols: usize) -> String {
        let v: Vec<String> = (0..rows).map(|_| self.vector(cols)).collect();
        format!("[{}]", v.join(", "))
    }
}

fn quartic(n: usize) -> String {
    let mut r = Lcg(n as u64);
    format!(
        "param w[{n}] = {}\nloss = sum(i, w[i]^2)/2 + sum(i, w[i]^4)/4\n",
        r.vector(n)
    )
}

fn mlp(d: usize, h: usize, n: usize) -> String {
    let mut r = Lcg((d * 1000 + h) as u64);
    format!(
        "data X[{n},{d}] = {}\ndata y[{n}] = {}\nparam W[{h},{d}] = {}\nparam a[{h}] = {}\n\
         let hid[n,j] = tanh(sum(k, W[j,k]*X[n,k]))\n\
         let out[n] = sum(j, a[j]*hid[n,j])\n\
         loss = mean(n, (out[n]-y[n])^2)/2\n",
        r.matrix(n, d),
        r.vector(n),
        r.matrix(h, d),
        r.vector(h),
    )
}

/// One size of a family: its label, the size the exponent is fitted against, the loss text,
/// and how many times to repeat the in-process and the whole-process runs.
struct Case {
    label: String,
    size: Option<f64>,
    text: String,
    reps: usize,
    process_reps: usize,
}

/// What one size measured.
struct Row {
    label: String,
    size: f64,
    ops: usize,
    nodes: u64,
    stages: Vec<(&'static str, Duration)>,
    process: Option<Process>,
}

struct Process {
    text: Duration,
    text_kb: u64,
    json: Duration,
    json_kb: u64,
}

/// The release binary next to this bench's own (`…/release/deps/scaling-…`), else under
/// `$CARGO_TARGET_DIR` or `target`.
fn binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = exe
        .as_ref()
        .and_then(|e| e.parent())
        .and_then(|d| d.parent())
    {
        candidates.push(dir.join("eomderive"));
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    candidates.push(PathBuf::from(target).join("release").join("eomderive"));
    candidates.into_iter().find(|p| p.is_file())
}

/// Wall time and peak RSS (KiB, `/usr/bin/time -f %M`) of one run with standard output
/// discarded.
fn run_process(bin: &PathBuf, file: &PathBuf, order: usize, format: &str) -> (Duration, u64) {
    let rss_file = file.with_extension(format!("{format}.rss"));
    let start = Instant::now();
    let status = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(bin)
        .arg(file)
        .arg("--order")
        .arg(order.to_string())
        .arg("--format")
        .arg(format)
        .stdout(Stdio::null())
        .status()
        .expect("/usr/bin/time runs");
    let wall = start.elapsed();
    assert!(
        status.success(),
        "{} {} failed",
        bin.display(),
        file.display()
    );
    let rss = std::fs::read_to_string(&rss_file).unwrap_or_default();
    let _ = std::fs::remove_file(&rss_file);
    let kb = rss
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .next_back()
        .unwrap_or(0);
    (wall, kb)
}

fn measure(family: &str, order: usize, case: &Case, bin: Option<&PathBuf>) -> Row {
    let source = Source::inline(&case.text);
    let options = Options {
        order,
        ..Options::default()
    };
    let mut names: Vec<&'static str> = Vec::new();
    let mut samples: Vec<Vec<Duration>> = Vec::new();
    let mut record = |name: &'static str, t: Duration, names: &mut Vec<&'static str>| {
        let i = match names.iter().position(|n| *n == name) {
            Some(i) => i,
            None => {
                names.push(name);
                samples.push(Vec::new());
                names.len() - 1
            }
        };
        samples[i].push(t);
    };
    let mut ops = 0;
    let mut nodes = 0;
    for rep in 0..case.reps {
        let start = Instant::now();
        let d = derive(&source, &options).unwrap();
        let whole = start.elapsed();
        for (name, t) in d.stages.iter() {
            record(name, t, &mut names);
        }
        record("derive", whole, &mut names);
        let t = Instant::now();
        let text_len = render::text(&d).len();
        record("render::text", t.elapsed(), &mut names);
        let t = Instant::now();
        let json = render::json(&d);
        record("render::json", t.elapsed(), &mut names);
        let t = Instant::now();
        let emitted = render::emit(&d, Target::Python, Some(&source)).len();
        record("emit python", t.elapsed(), &mut names);
        assert!(text_len > 0 && emitted > 0);
        if rep == 0 {
            let j: serde_json::Value = serde_json::from_str(&json).unwrap();
            ops = j["stats"]["ops"].as_u64().unwrap() as usize;
            nodes = j["stats"]["nodes"].as_u64().unwrap_or(0);
        }
    }
    let stages = names
        .iter()
        .zip(samples)
        .map(|(n, s)| (*n, median(s)))
        .collect();
    let process = bin.map(|bin| {
        let file = std::env::temp_dir().join(format!(
            "eomderive-scaling-{family}-{}-{}.expr",
            case.label.replace([' ', ',', '(', ')', '='], "_"),
            std::process::id()
        ));
        std::fs::write(&file, &case.text).unwrap();
        let (mut text, mut json, mut text_kb, mut json_kb) = (vec![], vec![], 0, 0);
        for _ in 0..case.process_reps {
            let (t, kb) = run_process(bin, &file, order, "text");
            text.push(t);
            text_kb = text_kb.max(kb);
            let (t, kb) = run_process(bin, &file, order, "json");
            json.push(t);
            json_kb = json_kb.max(kb);
        }
        let _ = std::fs::remove_file(&file);
        Process {
            text: median(text),
            text_kb,
            json: median(json),
            json_kb,
        }
    });
    Row {
        label: case.label.clone(),
        size: case.size.unwrap_or(ops as f64),
        ops,
        nodes,
        stages,
        process,
    }
}

fn exponent(rows: &[Row], y: impl Fn(&Row) -> Option<f64>) -> String {
    let pts: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| y(r).map(|v| (r.size, v)))
        .collect();
    match slope(&pts) {
        Some(s) => format!("**{s:.2}**"),
        None => "–".into(),
    }
}

fn print_tables(title: &str, size_name: &str, fit: &str, rows: &[Row]) {
    let mut names: Vec<&'static str> = Vec::new();
    for r in rows {
        for (n, _) in &r.stages {
            if !names.contains(n) {
                names.push(n);
            }
        }
    }
    let stage = |r: &Row, n: &str| r.stages.iter().find(|(m, _)| *m == n).map(|(_, t)| *t);
    println!("\n### {title}: stages (median ms; exponent against {fit})\n");
    let mut head = format!("| {size_name} | ops | nodes |");
    let mut rule = "|---|--:|--:|".to_string();
    for n in &names {
        head.push_str(&format!(" {n} |"));
        rule.push_str("--:|");
    }
    println!("{head}\n{rule}");
    for r in rows {
        let mut line = format!("| {} | {} | {} |", r.label, r.ops, r.nodes);
        for n in &names {
            match stage(r, n) {
                Some(t) => line.push_str(&format!(" {:.2} |", ms(t))),
                None => line.push_str(" – |"),
            }
        }
        println!("{line}");
    }
    // The fit over every size, then the slope between the two largest alone (past the
    // readable form's 20 000-operation limit, where `writing the formulas` changes regime).
    let top = &rows[rows.len().saturating_sub(2)..];
    for (label, rows) in [("exponent", rows), ("exponent, 2 largest", top)] {
        let mut line = format!("| {label} | | |");
        for n in &names {
            line.push_str(&format!(
                " {} |",
                exponent(rows, |r| stage(r, n).map(|t| t.as_secs_f64()))
            ));
        }
        println!("{line}");
    }

    if rows.iter().all(|r| r.process.is_none()) {
        println!(
            "\n(no release binary found: `cargo build --release` for the whole-process table)"
        );
        return;
    }
    println!("\n### {title}: whole process (median wall ms; peak RSS from /usr/bin/time; exponent against {fit})\n");
    println!("| {size_name} | ops | nodes | text (ms) | json (ms) | peak RSS text (MiB) | peak RSS json (MiB) | RSS / op (B) | RSS / node (B) |");
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in rows {
        if let Some(p) = &r.process {
            let bytes = p.text_kb.max(p.json_kb) as f64 * 1024.0;
            println!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} |",
                r.label,
                r.ops,
                r.nodes,
                ms(p.text),
                ms(p.json),
                p.text_kb as f64 / 1024.0,
                p.json_kb as f64 / 1024.0,
                bytes / r.ops.max(1) as f64,
                bytes / r.nodes.max(1) as f64,
            );
        }
    }
    let p = |f: fn(&Process) -> f64| move |r: &Row| r.process.as_ref().map(f);
    println!(
        "| exponent | | | {} | {} | {} | {} | | |",
        exponent(rows, p(|p| p.text.as_secs_f64())),
        exponent(rows, p(|p| p.json.as_secs_f64())),
        exponent(rows, p(|p| p.text_kb as f64)),
        exponent(rows, p(|p| p.json_kb as f64)),
    );
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |family: &str| filter.as_ref().is_none_or(|f| family.contains(f.as_str()));
    let bin = binary();
    match &bin {
        Some(b) => eprintln!("whole-process runs: {}", b.display()),
        None => eprintln!("no release binary found; run `cargo build --release` first"),
    }
    let started = Instant::now();

    if wanted("quartic") {
        let cases: Vec<Case> = [(100, 15, 3), (1_000, 5, 3), (10_000, 3, 3), (100_000, 1, 1)]
            .into_iter()
            .map(|(n, reps, process_reps)| Case {
                label: n.to_string(),
                size: Some(n as f64),
                text: quartic(n),
                reps,
                process_reps,
            })
            .collect();
        let rows: Vec<Row> = cases
            .iter()
            .map(|c| {
                eprintln!(
                    "quartic n = {} ({:.0} s so far)",
                    c.label,
                    started.elapsed().as_secs_f64()
                );
                measure("quartic", 2, c, bin.as_ref())
            })
            .collect();
        print_tables("Separable quartic, `param w[n]`, order 2", "n", "n", &rows);
    }

    if wanted("mlp") {
        let cases: Vec<Case> = [
            (2, 4, 10, 9, 3),
            (4, 8, 25, 5, 3),
            (8, 16, 50, 3, 3),
            (16, 32, 100, 1, 1),
        ]
        .into_iter()
        .map(|(d, h, n, reps, process_reps)| Case {
            label: format!("({d}, {h}, {n})"),
            size: None,
            text: mlp(d, h, n),
            reps,
            process_reps,
        })
        .collect();
        let rows: Vec<Row> = cases
            .iter()
            .map(|c| {
                eprintln!(
                    "mlp (d, h, N) = {} ({:.0} s so far)",
                    c.label,
                    started.elapsed().as_secs_f64()
                );
                measure("mlp", 3, c, bin.as_ref())
            })
            .collect();
        print_tables(
            "tanh MLP d→h→1 on N examples, order 3 (rows: (d, h, N))",
            "(d, h, N)",
            "ops",
            &rows,
        );
    }
    eprintln!("total {:.0} s", started.elapsed().as_secs_f64());
}
