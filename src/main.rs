//! The command line: parse flags, call the library, print the result or the error.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use eomderive::numeric::CheckOptions;
use eomderive::{
    check, derive, generic, lang::Source, render, Error, ErrorKind, Options, Simplify,
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
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Simplification: `fast` (structural, milliseconds) or `egg` (also equality saturation:
    /// a few percent fewer operations, slower).
    #[arg(long, value_enum, default_value_t = SimplifyArg::Fast)]
    simplify: SimplifyArg,
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
    /// Draw the check as an SVG file (implies --check).
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum SimplifyArg {
    Fast,
    Egg,
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

fn run(cli: Cli) -> eomderive::Result<String> {
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
        let s = generic(cli.order)?;
        return Ok(match cli.format {
            Format::Text => render::generic_text(&s),
            Format::Latex => render::generic_latex(&s),
            Format::Json => render::generic_json(&s),
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
        weight_decay: cli.weight_decay,
        progress: Some(progress),
        ..Options::default()
    };
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
    Ok(match cli.format {
        Format::Text => render::text(&d),
        Format::Latex => render::latex(&d),
        Format::Json => render::json(&d),
    })
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
    // Printing and deriving recurse on expression depth; give them room.
    let result = std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(move || run(cli))
        .map(|h| h.join());
    match result {
        Ok(Ok(Ok(out))) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
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
