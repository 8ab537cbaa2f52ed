//! Writes eomderive's generic JAX module (`render::generic_jax`) until the command line has
//! `--generic --order K --emit jax`:
//!
//!     cargo run --release --example emit_generic_jax -- 3 gen.py
//!
//! The first argument is the order (default 2); the second the output file (default stdout).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let order = match args.first().map(|a| a.parse::<usize>()) {
        None => 2,
        Some(Ok(k)) => k,
        Some(Err(_)) => {
            eprintln!("usage: emit_generic_jax [ORDER] [FILE]");
            std::process::exit(2);
        }
    };
    let series = match eomderive::generic(order) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(e.exit_code());
        }
    };
    let text = eomderive::render::generic_jax(&series);
    match args.get(1) {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("error: cannot write {path}: {e}");
                std::process::exit(1);
            }
        }
        None => print!("{text}"),
    }
}
