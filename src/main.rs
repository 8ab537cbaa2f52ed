//! The command line: parse flags, call the library, print the result or the error.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use eomderive::lang::{Settings, Source};
use eomderive::numeric::CheckOptions;
use eomderive::series::{BatchOrder, Method, Optimizer, Parameter};
use eomderive::{
    check, derive, generic, generic_jax_module, generic_optimizer, generic_sgd, render,
    resolve_optimizer, Error, ErrorKind, Form, Options, Simplify,
};
use num_rational::BigRational;

/// Derive the counter terms ξ_k of gradient descent's equation of motion,
/// dθ/dt = -∇f - η ξ_1 - η² ξ_2 - ..., exactly, for a loss.
#[derive(Parser, Debug)]
#[command(name = "eomderive", version, about)]
struct Cli {
    /// A loss file, `-` for standard input, or the loss itself, e.g. "(u*v - 1)^2/2".
    loss: Option<String>,
    /// Derive ξ_1..ξ_K.
    #[arg(long, value_name = "K", default_value_t = 2, value_parser = parse_order, allow_negative_numbers = true)]
    order: usize,
    /// Output format of the report (text by default; not with --emit).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Simplification: `fast` (structural, milliseconds) or `egg` (also equality saturation:
    /// a few percent fewer operations, slower).
    #[arg(long, value_enum, default_value_t = SimplifyArg::Fast)]
    simplify: SimplifyArg,
    /// How formulas are written: `readable` (factored and collected, few names), `expanded`
    /// (sums of monomials) or `program` (the straight-line program the numeric layer
    /// compiles). JSON always carries the program too, under "program".
    #[arg(long, value_enum, default_value_t = FormArg::Readable)]
    form: FormArg,
    /// Print the loss-independent tree form of ξ_1..ξ_K (no LOSS).
    #[arg(long)]
    generic: bool,
    /// Evaluate at this point: NAME=VALUE,... (vector entries as w[2]=0.4).
    #[arg(long, value_name = "NAME=VALUE,...")]
    at: Option<String>,
    /// Integrate the EoM truncated at each order 0..K and compare it with gradient descent.
    #[arg(long)]
    check: bool,
    /// The learning rate η of the check (also η/2, η/4, η/8 at the same horizon).
    #[arg(
        long,
        value_name = "η",
        default_value_t = 0.05,
        allow_negative_numbers = true
    )]
    lr: f64,
    /// GD steps of the check at η (the horizon is steps·η).
    #[arg(long, value_name = "N", default_value_t = 40)]
    steps: usize,
    /// Weight decay λ: train on the loss plus (λ/2)‖θ‖² (e.g. 0.01 or 1/100; overrides a
    /// `weight_decay` line in the loss file).
    #[arg(long, value_name = "λ", value_parser = parse_decay, allow_negative_numbers = true)]
    weight_decay: Option<BigRational>,
    /// The optimizer whose equation of motion is derived: gd, heavy-ball, nesterov,
    /// extragradient, sam or sgd (overrides an `optimizer` line in the loss file).
    #[arg(long, value_name = "NAME", value_parser = parse_method)]
    optimizer: Option<Method>,
    /// Momentum β of heavy-ball and Nesterov, in [0, 1) (0.9 or 9/10; default 9/10; with
    /// --generic, β stays a symbol unless given).
    #[arg(long, value_name = "β", value_parser = parse_momentum, allow_negative_numbers = true)]
    momentum: Option<BigRational>,
    /// SAM's ρ = r·η (default r = 1; with --generic, r stays a symbol unless given).
    #[arg(long, value_name = "r", value_parser = parse_ratio, allow_negative_numbers = true)]
    rho_ratio: Option<BigRational>,
    /// SGD's number of minibatches m: the examples of `loss = mean(i, ...)` split into m
    /// equal consecutive batches, one step each per epoch (overrides a `batches` line).
    #[arg(long, value_name = "m", value_parser = parse_batches, allow_negative_numbers = true)]
    batches: Option<usize>,
    /// The order SGD visits its batches in each epoch: cyclic (1, 2, ..., m) or shuffled
    /// (random reshuffling; the default; overrides a `batch_order` line).
    #[arg(long, value_name = "ORDER", value_parser = parse_batch_order)]
    batch_order: Option<BatchOrder>,
    /// Most memory the derivation may use: 4G, 512M, 1.5GiB (default: a quarter of this
    /// machine's). A derivation forecast to pass it stops before the work, naming the
    /// largest order that fits.
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    max_memory: Option<u64>,
    /// Draw the check as an SVG file (implies --check).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<std::path::PathBuf>,
    /// Write the loss, gradient and counter terms as a standalone source file instead of the
    /// report: python (NumPy), jax (jax.numpy, jit-able) or rust (no dependencies).
    #[arg(long, value_name = "TARGET", value_parser = parse_target)]
    emit: Option<render::Target>,
    /// Write the output (the report, or the emitted code) to FILE instead of standard output,
    /// atomically: a temporary file in the same directory renamed over FILE when complete.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SimplifyArg {
    Fast,
    Egg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormArg {
    Readable,
    Expanded,
    Program,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Text,
    Latex,
    Json,
}

fn parse_order(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("the order must be at least 1 (counter terms start at ξ_1)".into()),
        Ok(k) => Ok(k),
        Err(_) => Err(format!(
            "`{s}` is not a whole number; give the order K as 1, 2, 3, ..."
        )),
    }
}

fn parse_decay(s: &str) -> Result<BigRational, String> {
    match eomderive::lang::parse_exact(s.trim()) {
        Some(l) if l < BigRational::from_integer(0.into()) => {
            Err(format!("the weight decay must be 0 or more (got {s})"))
        }
        Some(l) => Ok(l),
        None => Err(format!(
            "`{s}` is not a number; write the weight decay as 0.01, 1e-2 or 1/100"
        )),
    }
}

fn parse_method(s: &str) -> Result<Method, String> {
    let name = s.trim().to_ascii_lowercase();
    if let Some(m) = Method::from_name(&name) {
        return Ok(m);
    }
    let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
    let close = eomderive::lang::close_method(&name).map(Method::name);
    let hint = close.map_or(String::new(), |n| format!("; did you mean `{n}`?"));
    Err(format!(
        "unknown optimizer `{s}`: the optimizers are {}{hint}",
        names.join(", ")
    ))
}

fn parse_target(s: &str) -> Result<render::Target, String> {
    render::Target::from_name(&s.trim().to_ascii_lowercase()).ok_or_else(|| {
        let names: Vec<&str> = render::Target::ALL.iter().map(|t| t.name()).collect();
        format!("unknown target `{s}`: the targets are {}", names.join(", "))
    })
}

fn parse_batches(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("the number of batches must be a whole number, 1 or more (got 0)".into()),
        Ok(m) => Ok(m),
        Err(_) => Err(format!(
            "the number of batches must be a whole number, 1 or more (got `{s}`)"
        )),
    }
}

fn parse_batch_order(s: &str) -> Result<BatchOrder, String> {
    BatchOrder::from_name(&s.trim().to_ascii_lowercase())
        .ok_or_else(|| format!("unknown batch order `{s}`: the orders are cyclic and shuffled"))
}

fn parse_memory(s: &str) -> Result<u64, String> {
    eomderive::budget::parse_size(s)
}

fn parse_momentum(s: &str) -> Result<BigRational, String> {
    let v = eomderive::lang::parse_exact(s.trim())
        .ok_or_else(|| format!("`{s}` is not a number; write the momentum as 0.9, 9/10 or 0.99"))?;
    match Parameter::Momentum.refuse(&v) {
        Some(why) => Err(why),
        None => Ok(v),
    }
}

fn parse_ratio(s: &str) -> Result<BigRational, String> {
    eomderive::lang::parse_exact(s.trim())
        .ok_or_else(|| format!("`{s}` is not a number; write SAM's ratio r = ρ/η as 1, 0.5 or 1/2"))
}

fn run(cli: Cli) -> eomderive::Result<String> {
    if cli.emit.is_some() {
        let conflicts = [
            (cli.format.is_some(), "--format"),
            (cli.check, "--check"),
            (cli.plot.is_some(), "--plot"),
        ];
        if let Some((_, flag)) = conflicts.iter().find(|(given, _)| *given) {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("{flag} applies to the report, and --emit writes code instead of it"),
            )
            .with_help(format!(
                "run eomderive once with --emit and once with {flag}"
            )));
        }
    }
    let format = cli.format.unwrap_or(Format::Text);
    if cli.generic {
        if let Some(loss) = cli.loss {
            return Err(Error::new(
                ErrorKind::Usage,
                format!("--generic takes no LOSS (found `{loss}`)"),
            )
            .with_help(
                "the generic form is the same for every loss; drop the LOSS argument or --generic",
            ));
        }
        match cli.emit {
            None => {}
            Some(render::Target::Jax) => {
                if cli.optimizer.is_some_and(|m| m != Method::Gd) {
                    return Err(Error::new(
                        ErrorKind::Usage,
                        "the generic JAX module is gradient descent's tree table",
                    )
                    .with_help(
                        "drop --optimizer, or give a LOSS to emit that optimizer's terms with --emit jax",
                    ));
                }
                return generic_jax_module(cli.order);
            }
            Some(t) => {
                return Err(Error::new(
                    ErrorKind::Usage,
                    format!("the generic form is emitted for jax only (not {t})"),
                )
                .with_help("use --generic --emit jax, or give a LOSS to --emit python or rust"));
            }
        }
        let sgd = cli.optimizer == Some(Method::Sgd);
        let flags = Options {
            method: cli.optimizer,
            momentum: cli.momentum.clone(),
            rho_ratio: cli.rho_ratio.clone(),
            // SGD's generic form exists for every m: --batches is optional here.
            batches: cli.batches.or(sgd.then_some(1)),
            batch_order: cli.batch_order,
            ..Options::default()
        };
        // Checks the combination; the parameter stays a symbol unless it was given.
        let resolved = resolve_optimizer(&flags, &Settings::default())?;
        let method = resolved.method;
        if let Some(b) = resolved.batches {
            let s = generic_sgd(b.order, cli.batches, cli.order)?;
            return Ok(match format {
                Format::Text => render::sgd_text(&s),
                Format::Latex => render::sgd_latex(&s),
                Format::Json => render::sgd_json(&s),
            });
        }
        if method == Method::Gd {
            let s = generic(cli.order)?;
            return Ok(match format {
                Format::Text => render::generic_text(&s),
                Format::Latex => render::generic_latex(&s),
                Format::Json => render::generic_json(&s),
            });
        }
        let given = cli.momentum.or(cli.rho_ratio);
        let optimizer = match method {
            Method::Sgd => resolved,
            _ => Optimizer::new(method, given),
        };
        let s = generic_optimizer(&optimizer, cli.order)?;
        return Ok(match format {
            Format::Text => render::method_text(&s),
            Format::Latex => render::method_latex(&s),
            Format::Json => render::method_json(&s),
        });
    }
    let Some(loss) = cli.loss else {
        return Err(Error::new(ErrorKind::Usage, "no LOSS given")
            .with_help("give a loss file, `-` for standard input, or the loss itself, e.g. eomderive \"(u*v - 1)^2/2\"; or use --generic"));
    };
    let source = Source::from_argument(&loss)?;
    let options = Options {
        order: cli.order,
        at: cli.at,
        simplify: match cli.simplify {
            SimplifyArg::Fast => Simplify::Fast,
            SimplifyArg::Egg => Simplify::Egg,
        },
        form: match cli.form {
            FormArg::Readable => Form::Readable,
            FormArg::Expanded => Form::Expanded,
            FormArg::Program => Form::Program,
        },
        weight_decay: cli.weight_decay,
        method: cli.optimizer,
        momentum: cli.momentum,
        rho_ratio: cli.rho_ratio,
        batches: cli.batches,
        batch_order: cli.batch_order,
        progress: Some(progress),
        max_memory: cli.max_memory,
        ..Options::default()
    };
    if let Some(target) = cli.emit {
        // The emitted code is the program form; the analyses and printed forms are not needed.
        let options = Options {
            form: Form::Program,
            analyze: false,
            ..options
        };
        let d = derive(&source, &options)?;
        let out = render::emit(&d, target, Some(&source));
        std::mem::forget(d); // as below
        return Ok(out);
    }
    let mut d = derive(&source, &options)?;
    if cli.check || cli.plot.is_some() {
        let c = check(
            &d,
            &CheckOptions {
                lr: cli.lr,
                steps: cli.steps,
                ..CheckOptions::default()
            },
        )?;
        if let Some(path) = &cli.plot {
            std::fs::write(path, render::plot_svg(&c)).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("cannot write {}: {e}", path.display()),
                )
            })?;
        }
        d.check = Some(c);
    }
    let out = match format {
        Format::Text => render::text(&d),
        Format::Latex => render::latex(&d),
        Format::Json => render::json(&d),
    };
    // The process ends next: freeing a large derivation's millions of nodes one by one would
    // cost a good part of a second for nothing.
    std::mem::forget(d);
    Ok(out)
}

/// When the run started, for [`progress`].
static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Shows a derivation's stages on standard error when it is a terminal and the run has taken
/// longer than a second.
fn progress(stage: &str) {
    use std::io::IsTerminal;
    let elapsed = START.get_or_init(std::time::Instant::now).elapsed();
    if elapsed.as_secs_f64() > 1.0 && std::io::stderr().is_terminal() {
        eprintln!("eomderive: {stage}... ({:.1} s)", elapsed.as_secs_f64());
    }
}

fn main() -> ExitCode {
    START.get_or_init(std::time::Instant::now);
    let cli = Cli::parse();
    let output = cli.output.clone();
    // Printing and deriving recurse on expression depth; give them room.
    let result = std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(move || run(cli))
        .map(|h| h.join());
    match result {
        Ok(Ok(Ok(out))) => match &output {
            None => {
                print!("{out}");
                ExitCode::SUCCESS
            }
            Some(path) => match write_atomically(path, out.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(e.exit_code() as u8)
                }
            },
        },
        Ok(Ok(Err(e))) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code() as u8)
        }
        _ => {
            eprintln!("error: internal error (please report it with the input that caused it)");
            ExitCode::from(1)
        }
    }
}

/// Writes `bytes` to `path` so that `path` holds either its old content or all of the new,
/// never part of it: into a temporary file in the same directory, renamed over `path` when
/// complete (the existing file's permissions kept). On failure the temporary file is removed
/// and the error, exit status 2, says `cannot write FILE: why`.
fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> eomderive::Result<()> {
    use std::io::Write;
    let fail = |e: std::io::Error| {
        Error::new(
            ErrorKind::Usage,
            format!("cannot write {}: {e}", path.display()),
        )
        .with_help("give -o a path in a directory that exists and is writable")
    };
    let name = path
        .file_name()
        .ok_or_else(|| fail(std::io::Error::other("not a file name")))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".eomderive-{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(fail)?;
    let written = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        if let Ok(old) = std::fs::metadata(path) {
            if old.is_file() {
                std::fs::set_permissions(&tmp, old.permissions())?;
            }
        }
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}
