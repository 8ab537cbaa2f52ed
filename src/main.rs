//! The command line: parse flags, call the library, print the result or the error.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use eomderive::{analyze, lang::Source, render, Options};

/// Derive the counter terms of gradient descent's equation of motion for a loss.
#[derive(Parser, Debug)]
#[command(name = "eomderive", version, about)]
struct Cli {
    /// A loss file, `-` for standard input, or the loss itself, e.g. "(u*v - 1)^2/2".
    loss: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Evaluate at this point: NAME=VALUE,... (vector entries as w[2]=0.4).
    #[arg(long, value_name = "NAME=VALUE,...")]
    at: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Text,
    Json,
}

fn run(cli: Cli) -> eomderive::Result<String> {
    let source = Source::from_argument(&cli.loss)?;
    let report = analyze(&source, &Options { at: cli.at })?;
    Ok(match cli.format {
        Format::Text => render::text(&report),
        Format::Json => render::json(&report),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Printing and deriving recurse on expression depth; give them room.
    let result = std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(move || run(cli))
        .expect("spawn the worker thread")
        .join();
    match result {
        Ok(Ok(out)) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code() as u8)
        }
        Err(_) => {
            eprintln!("error: internal error (please report it with the input that caused it)");
            ExitCode::from(1)
        }
    }
}
