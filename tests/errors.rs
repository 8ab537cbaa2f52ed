//! Every kind of bad input, through the binary: exit status 2, an error on standard error that
//! names the line and column (rustc style), a message that says what is wrong, and never a panic.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What one run of the binary did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Resources one run may use.
#[derive(Clone, Copy)]
struct Limits {
    seconds: u64,
    /// Address space in KiB (`ulimit -v`), for inputs that might blow up.
    memory_kib: Option<u64>,
}

const USUAL: Limits = Limits {
    seconds: 120,
    memory_kib: None,
};

/// Runs the binary with `args` (and `stdin`, if given). Checks what must hold for every input:
/// it exits (no signal) within the time limit, not with a panic's status 101, and prints
/// nothing about a panic.
fn run_limited(args: &[&str], stdin: Option<&[u8]>, limits: Limits) -> Run {
    let bin = env!("CARGO_BIN_EXE_eomderive");
    let mut cmd = match limits.memory_kib {
        None => Command::new(bin),
        Some(kib) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
                .arg(bin);
            c
        }
    };
    let mut child = cmd
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run eomderive");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let read = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(limits.seconds);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for eomderive") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("eomderive {args:?} took longer than {} s", limits.seconds);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().unwrap();
    let stderr = stderr.join().unwrap();
    let shown = |s: &str| s.chars().take(2000).collect::<String>();
    let Some(code) = status.code() else {
        panic!(
            "eomderive {args:?} was killed by a signal ({status:?})\nstderr: {}",
            shown(&stderr)
        );
    };
    assert_ne!(
        code,
        101,
        "eomderive {args:?} panicked:\n{}",
        shown(&stderr)
    );
    for (what, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !text.contains("panicked") && !text.contains("internal error"),
            "eomderive {args:?} panicked ({what}):\n{}",
            shown(text)
        );
    }
    Run {
        code,
        stdout,
        stderr,
    }
}

fn run_with(args: &[&str], stdin: Option<&[u8]>) -> Run {
    run_limited(args, stdin, USUAL)
}

fn run(args: &[&str]) -> Run {
    run_with(args, None)
}

/// Runs an inline loss.
fn inline(loss: &str) -> Run {
    run(&[loss])
}

/// Asserts a bad-input failure at `place` (`<inline>:2:8`) whose message contains `phrases`.
fn assert_fails(r: &Run, place: &str, phrases: &[&str]) {
    assert_eq!(r.code, 2, "exit status for:\n{}", r.stderr);
    assert!(
        r.stderr.starts_with("error: "),
        "not an error message:\n{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(&format!("--> {place}\n")),
        "expected the location {place} in:\n{}",
        r.stderr
    );
    for p in phrases {
        assert!(
            r.stderr.contains(p),
            "expected `{p}` in the message:\n{}",
            r.stderr
        );
    }
    assert!(r.stdout.is_empty(), "output on failure:\n{}", r.stdout);
}

/// Asserts a bad-input failure (exit 2) whose message contains `phrases`, without location.
fn assert_fails_somewhere(r: &Run, phrases: &[&str]) {
    assert_eq!(r.code, 2, "exit status for:\n{}", r.stderr);
    assert!(
        r.stderr.starts_with("error: "),
        "not an error message:\n{}",
        r.stderr
    );
    for p in phrases {
        assert!(
            r.stderr.contains(p),
            "expected `{p}` in the message:\n{}",
            r.stderr
        );
    }
}

/// A file under the temp directory with a unique name, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "eomderive-errors-{}-{}-{name}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, bytes).expect("write a temp file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Syntax

#[test]
fn syntax_error() {
    let r = inline("loss = u +");
    assert_fails(&r, "<inline>:1:11", &["expected an expression"]);
    // The source line and a caret under the place.
    assert!(
        r.stderr.contains("1 | loss = u +\n  |           ^"),
        "{}",
        r.stderr
    );

    let f = TempFile::new("syntax.expr", b"param u\nloss = u * * 2\n");
    let r = run(&[f.path()]);
    assert_fails(&r, &format!("{}:2:12", f.path()), &["expected"]);
    // A file that exists is not re-read as an inline loss.
    assert!(!r.stderr.contains("names no file"), "{}", r.stderr);

    // Unbalanced brackets are reported at the bracket.
    assert_fails(
        &inline("param u\nloss = (u + 1"),
        "<inline>:2:8",
        &["this `(` is never closed"],
    );
    assert_fails(
        &inline("param w[2] = [1, 2\nloss = w[1]"),
        "<inline>:1:14",
        &["this `[` is never closed"],
    );
    assert_fails(
        &inline("param u\nloss = u + 1)"),
        "<inline>:2:13",
        &["unmatched `)`"],
    );
    assert_fails(
        &inline("param u\nloss = (u\n + 1]"),
        "<inline>:3:5",
        &["`]` closes the `(` of line 2, column 8; expected `)`"],
    );
    assert_fails(
        &inline("param u\nloss = u $ 2"),
        "<inline>:2:10",
        &["expected"],
    );
    assert_fails(
        &inline("param u\nloss = u\nbogus = 3"),
        "<inline>:3:1",
        &["expected"],
    );
}

#[test]
fn syntax_error_with_crlf_line_endings() {
    // The column is counted on the visible line: just past `+`, as with `\n` endings.
    let f = TempFile::new("crlf.expr", b"param u\r\nloss = u +\r\nparam v\r\n");
    let r = run(&[f.path()]);
    assert_fails(
        &r,
        &format!("{}:2:11", f.path()),
        &["expected an expression"],
    );
    assert!(!r.stderr.contains('\r'), "{:?}", r.stderr);
    let f = TempFile::new("crlf-end.expr", b"param u\r\nloss = u +\r");
    let r = run(&[f.path()]);
    assert_fails(
        &r,
        &format!("{}:2:11", f.path()),
        &["expected an expression"],
    );
    assert!(!r.stderr.contains('\r'), "{:?}", r.stderr);
    // Semantic errors too.
    let f = TempFile::new("crlf-name.expr", b"param u\r\nloss = uu\r\n");
    let r = run(&[f.path()]);
    assert_fails(&r, &format!("{}:2:8", f.path()), &["`uu` is not declared"]);
    assert!(r.stderr.contains("2 | loss = uu\n"), "{:?}", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// Names

#[test]
fn undeclared_name_with_did_you_mean() {
    let r = inline("param u\nloss = uu + 1");
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stderr,
        "error: `uu` is not declared\n --> <inline>:2:8\n  |\n2 | loss = uu + 1\n  |        ^^\n  \
         = help: did you mean `u`?\n"
    );
    let r = inline("param alpha, beta\nloss = alpha*betta");
    assert_fails(
        &r,
        "<inline>:2:14",
        &["`betta` is not declared", "did you mean `beta`?"],
    );
    // Nothing close: the help says how to declare it.
    let r = inline("param u\nloss = u*zzz");
    assert_fails(&r, "<inline>:2:10", &["`zzz` is not declared", "param zzz"]);
    // Used before its declaration.
    let r = inline("param u\nloss = u*v\nparam v");
    assert_fails(&r, "<inline>:2:10", &["`v` is not declared"]);
    // An undeclared array.
    let r = inline("param u\nloss = u*x[1]");
    assert_fails(&r, "<inline>:2:10", &["`x` is not declared"]);
}

#[test]
fn duplicate_declaration() {
    let r = inline("param u\nparam u\nloss = u");
    assert_fails(&r, "<inline>:2:7", &["`u` is already declared", "line 1"]);
    let r = inline("param u, v\ndata v = 1\nloss = u");
    assert_fails(&r, "<inline>:2:6", &["`v` is already declared"]);
    let r = inline("param u\nlet u = 2\nloss = u");
    assert_fails(&r, "<inline>:2:5", &["`u` is already declared"]);
    let r = inline("param u = 1, u = 2\nloss = u");
    assert_fails(&r, "<inline>:1:14", &["`u` is already declared"]);
    let r = inline("param exp\nloss = exp");
    assert_fails(&r, "<inline>:1:7", &["name of a function"]);
}

// ---------------------------------------------------------------------------------------------
// Shapes and indices

#[test]
fn index_out_of_range() {
    let r = inline("param w[3]\nloss = w[4]");
    assert_fails(&r, "<inline>:2:10", &["index 4 is out of range", "1..3"]);
    let r = inline("param w[3]\nloss = w[0]");
    assert_fails(&r, "<inline>:2:10", &["index 0 is out of range"]);
    let r = inline("param W[2,3]\nloss = W[2,4]");
    assert_fails(&r, "<inline>:2:12", &["index 4 is out of range"]);
    // Inside a reduction, the index expression is located.
    let r = inline("param w[3]\nloss = sum(i in 1..4, w[i])");
    assert_fails(&r, "<inline>:2:25", &["index 4 is out of range"]);
    let r = inline("param w[3]\nloss = sum(i, w[i] * w[i+1])");
    assert_fails(&r, "<inline>:2:24", &["index 4 is out of range"]);
}

#[test]
fn wrong_number_of_indices() {
    let r = inline("param W[2,2]\nloss = W[1]");
    assert_fails(
        &r,
        "<inline>:2:8",
        &["`W` has shape [2,2]", "takes 2 indexes, not 1"],
    );
    let r = inline("param w[2]\nloss = w[1,1]");
    assert_fails(&r, "<inline>:2:8", &["takes 1 index, not 2"]);
    let r = inline("param u\nloss = u[1]");
    assert_fails(&r, "<inline>:2:8", &["`u` is a scalar and takes no index"]);
}

#[test]
fn shape_mismatch_between_size_and_value() {
    let r = inline("param w[3] = [1, 2]\nloss = w[1]");
    assert_fails(
        &r,
        "<inline>:1:14",
        &["`w` is declared [3] but its value has shape [2]"],
    );
    let r = inline("data u = 1\nparam W[2,2] = [1, 2, 3, 4]\nloss = W[1,1]*u");
    assert_fails(&r, "<inline>:2:16", &["declared [2,2]", "shape [4]"]);
    let r = inline("param w[2,2,2]\nloss = 1");
    assert_fails(&r, "<inline>:1:8", &["one or two indices"]);
}

#[test]
fn ragged_array() {
    let r = inline("param W[2,2] = [[1, 2], [3]]\nloss = W[1,1]");
    assert_fails(&r, "<inline>:1:25", &["ragged array"]);
    let r = inline("param W = [[1, 2], 3]\nloss = W[1,1]");
    assert_fails(&r, "<inline>:1:20", &["ragged array"]);
}

#[test]
fn array_used_as_a_scalar() {
    let r = inline("param w[3]\nloss = w + 1");
    assert_fails(
        &r,
        "<inline>:2:8",
        &["`w` is an array of shape [3], used here as a number"],
    );
    let r = inline("param W[2,2], u\nloss = exp(W)*u");
    assert_fails(&r, "<inline>:2:12", &["used here as a number"]);
    let r = inline("param u\nloss = norm(u)");
    assert_fails(&r, "<inline>:2:13", &["`norm` needs an array"]);
}

#[test]
fn range_that_cannot_be_inferred() {
    let r = inline("param u\nloss = sum(i, u)");
    assert_fails(
        &r,
        "<inline>:2:12",
        &["cannot infer the range of index `i`"],
    );
    // Only direct uses count: w[i+1] does not fix the range of i.
    let r = inline("param w[3]\nloss = sum(i, w[i+1])");
    assert_fails(&r, "<inline>:2:12", &["cannot infer the range"]);
    let r = inline("param u\nlet z[k] = k*u\nloss = z[1]");
    assert_fails(&r, "<inline>:2:7", &["cannot infer the range of index `k`"]);
}

#[test]
fn conflicting_inferred_ranges() {
    let r = inline("param w[3]\nparam v[2]\nloss = sum(i, w[i]*v[i])");
    assert_fails(
        &r,
        "<inline>:3:22",
        &["index `i` runs over 3 entries of `w` but over 2 entries of `v`"],
    );
    let r = inline("param W[2,3]\nlet z[i] = W[i,i]\nloss = z[1]");
    assert_fails(
        &r,
        "<inline>:2:16",
        &["runs over 2 entries", "over 3 entries"],
    );
}

// ---------------------------------------------------------------------------------------------
// The loss line

#[test]
fn two_loss_lines_point_at_the_second() {
    let r = inline("param u\nloss = u\nloss = u^2");
    assert_fails(
        &r,
        "<inline>:3:1",
        &["a second `loss` line", "the first is on line 2"],
    );
    let r = inline("param u; loss = u; loss = u^2");
    assert_fails(&r, "<inline>:1:20", &["a second `loss` line"]);
}

#[test]
fn no_loss_line() {
    let r = inline("param u\ndata x = 2\n");
    assert_fails(&r, "<inline>:2:11", &["there is no `loss = ...` line"]);
}

#[test]
fn no_parameters() {
    let r = inline("data x = 2\nloss = x^2");
    assert_fails(&r, "<inline>:1:1", &["no parameters"]);
    let r = inline("1 + 2");
    assert_fails(&r, "<inline>:1:1", &["no parameters"]);
}

// ---------------------------------------------------------------------------------------------
// Functions

#[test]
fn unknown_function() {
    let r = inline("param u\nloss = foo(u)");
    assert_fails(&r, "<inline>:2:8", &["unknown function `foo`"]);
    let r = inline("param u\nloss = 2*sigmod(u)");
    assert_fails(
        &r,
        "<inline>:2:10",
        &["unknown function `sigmod`", "did you mean `sigmoid`?"],
    );
}

#[test]
fn non_smooth_functions_are_refused() {
    for f in ["abs", "relu", "max", "min", "sign"] {
        let args = if matches!(f, "max" | "min") {
            "u, 0"
        } else {
            "u"
        };
        let r = inline(&format!("param u\nloss = 1 + {f}({args})"));
        assert_fails(
            &r,
            "<inline>:2:12",
            &[&format!("`{f}` is not smooth"), "smooth"],
        );
        // In a bare expression too.
        let r = inline(&format!("{f}({args})"));
        assert_fails(&r, "<inline>:1:1", &["smooth"]);
    }
}

#[test]
fn wrong_arity() {
    let r = inline("param u\nloss = exp(u, u)");
    assert_fails(&r, "<inline>:2:8", &["`exp` takes 1 argument, found 2"]);
    let r = inline("param u\nloss = pow(u)");
    assert_fails(&r, "<inline>:2:8", &["`pow` takes 2 arguments, found 1"]);
    let r = inline("param w[2]\nloss = dot(w)");
    assert_fails(&r, "<inline>:2:8", &["`dot` takes 2 arguments, found 1"]);
    let r = inline("param w[2]\nloss = sum(w[1])");
    assert_fails(
        &r,
        "<inline>:2:8",
        &["`sum` takes an index and an expression"],
    );
    let r = inline("param w[2]\nloss = sum(i, w[i], 1)");
    assert_fails(
        &r,
        "<inline>:2:8",
        &["`sum` takes an index and an expression"],
    );
    let r = inline("param u\nloss = exp(i in 1..2, u)");
    assert_fails(&r, "<inline>:2:12", &["not a reduction"]);
}

// ---------------------------------------------------------------------------------------------
// Values

#[test]
fn data_without_a_value() {
    let r = inline("data x\nparam u\nloss = u*x");
    assert_fails(&r, "<inline>:1:6", &["data `x` needs a value"]);
    let r = inline("param u\ndata y[3]\nloss = u");
    assert_fails(&r, "<inline>:2:6", &["data `y` needs a value"]);
}

#[test]
fn declared_values_must_be_constants() {
    let r = inline("param u\nparam v = 2*u\nloss = u*v");
    assert_fails(&r, "<inline>:2:11", &["must be a constant"]);
}

#[test]
fn division_by_a_literal_zero() {
    let r = inline("param u\nloss = u/0");
    assert_fails(&r, "<inline>:2:10", &["division by zero"]);
    let r = inline("param u\nloss = u/(1 - 1)");
    assert_fails(&r, "<inline>:2:11", &["division by zero"]);
    let r = inline("data z = 0\nparam u\nloss = u/z");
    assert_fails(&r, "<inline>:3:10", &["division by zero"]);
    let r = inline("param u\nloss = u + 0^-1");
    assert_fails(&r, "<inline>:2:12", &["0 raised to a negative power"]);
}

// ---------------------------------------------------------------------------------------------
// Files

#[test]
fn empty_file() {
    let f = TempFile::new("empty.expr", b"");
    let r = run(&[f.path()]);
    assert_fails(&r, &format!("{}:1:1", f.path()), &["the loss is empty"]);
    let f = TempFile::new("blank.expr", b"  \n\n\t\n");
    let r = run(&[f.path()]);
    assert_fails(&r, &format!("{}:1:1", f.path()), &["the loss is empty"]);
    // Inline too.
    assert_fails(&inline(""), "<inline>:1:1", &["the loss is empty"]);
}

#[test]
fn file_with_only_comments() {
    let f = TempFile::new("comments.expr", b"# nothing here\n\n# nor here\n");
    let r = run(&[f.path()]);
    // Just past the last comment.
    assert_fails(&r, &format!("{}:3:11", f.path()), &["the loss is empty"]);
    let f = TempFile::new("semicolons.expr", b"# a\n;;\n");
    let r = run(&[f.path()]);
    assert_fails(&r, &format!("{}:2:3", f.path()), &["the loss is empty"]);
}

#[test]
fn invalid_utf8_file() {
    let f = TempFile::new("latin1.expr", b"param u\nloss = u\xff + 1\n");
    let r = run(&[f.path()]);
    assert_fails(
        &r,
        &format!("{}:2:9", f.path()),
        &["not valid UTF-8", "byte 16"],
    );
    let f = TempFile::new("latin1-first.expr", b"\xe9");
    let r = run(&[f.path()]);
    assert_fails(&r, &format!("{}:1:1", f.path()), &["not valid UTF-8"]);
}

#[test]
fn nonexistent_file_says_both() {
    let r = run(&["nosuch.expr"]);
    assert_fails(
        &r,
        "<inline>:1:7",
        &["`nosuch.expr`", "names no file", "not a valid loss"],
    );
    let r = run(&["losses/missing_file.expr"]);
    assert_fails_somewhere(&r, &["names no file", "not a valid loss"]);
    // A semantic error in an inline loss is reported as such: it did parse.
    let r = inline("(u - 1)^2 + w[1]");
    assert_fails(&r, "<inline>:1:13", &["`w` is indexed but not declared"]);
    assert!(!r.stderr.contains("names no file"), "{}", r.stderr);
}

#[test]
fn standard_input() {
    let r = run_with(
        &["-", "--format", "json", "--order", "1"],
        Some(b"param u = 2\nloss = u^3\n"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON output");
    assert_eq!(json["params"], serde_json::json!(["u"]));
    assert_eq!(json["evaluation"]["gradient"], serde_json::json!([12.0]));
    let r = run_with(&["-"], Some(b"param u\nloss = uu"));
    assert_fails(&r, "<stdin>:2:8", &["`uu` is not declared"]);
    let r = run_with(&["-"], Some(b"loss = u +"));
    assert_fails(&r, "<stdin>:1:11", &["expected an expression"]);
    assert!(!r.stderr.contains("names no file"), "{}", r.stderr);
    let r = run_with(&["-"], Some(b""));
    assert_fails(&r, "<stdin>:1:1", &["the loss is empty"]);
    let r = run_with(&["-"], Some(b"param u\n\xff"));
    assert_fails(&r, "<stdin>:2:1", &["not valid UTF-8"]);
}

// ---------------------------------------------------------------------------------------------
// Limits

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let n = 100_000;
    let text = format!("{}u{}\n", "(".repeat(n), ")".repeat(n));
    let f = TempFile::new("nested.expr", text.as_bytes());
    let r = run(&[f.path()]);
    assert_fails(&r, &format!("{}:1:257", f.path()), &["nest"]);
    // Brackets count too, in array values.
    let text = format!("param w = {}1{}\nloss = w", "[".repeat(n), "]".repeat(n));
    let f = TempFile::new("nested-array.expr", text.as_bytes());
    let r = run(&[f.path()]);
    assert_fails(&r, &format!("{}:1:267", f.path()), &["nest"]);
    // Nesting within the limit is fine.
    let r = inline(&format!("{}u{}^2", "(".repeat(200), ")".repeat(200)));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn long_power_chain_does_not_crash() {
    let text = vec!["u"; 50_000].join("^");
    // The language itself takes it.
    let m = eomderive::lang::parse_str(&text).expect("a 50 000 `^` chain lowers");
    assert_eq!(m.params, ["u"]);
    let f = TempFile::new("chain.expr", text.as_bytes());
    // Order 1 keeps the run short; the parse and lowering are the same at any order. A run
    // that takes more than 8 GiB or five minutes fails (it would crash a smaller machine).
    let limits = Limits {
        seconds: 300,
        memory_kib: Some(8 << 20),
    };
    let r = run_limited(&[f.path(), "--order", "1"], None, limits);
    assert!(r.code == 0 || r.code == 2, "exit {}:\n{}", r.code, r.stderr);
    if r.code == 2 {
        assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    }
}

#[test]
fn long_chains_of_unary_minus_and_sums_do_not_crash() {
    let loss_at_point = |text: String, name: &str| {
        let f = TempFile::new(name, text.as_bytes());
        let r = run(&[f.path(), "--format", "json", "--order", "1"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let json: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON output");
        json["evaluation"]["loss"].as_f64().expect("a loss value")
    };
    // An even number of minus signs.
    let minus = format!("param u = 3\nloss = {}u", "-".repeat(100_000));
    assert_eq!(loss_at_point(minus, "minus.expr"), 3.0);
    let sum = format!("param u = 1\nloss = u{}", " + u".repeat(100_000));
    assert_eq!(loss_at_point(sum, "sum.expr"), 100_001.0);
    // Past the operator limit: an error, not a crash.
    let text = format!("param u = 1\nloss = u{}", "+u".repeat(300_000));
    let f = TempFile::new("too-long.expr", text.as_bytes());
    let r = run(&[f.path()]);
    assert_fails(
        &r,
        &format!("{}:2:{}", f.path(), 9 + 2 * 200_000), // the 200 001st `+`
        &["more than 200000 operators"],
    );
}

#[test]
fn huge_ranges_and_arrays_are_refused_at_once() {
    // The range length overflowed i64 and panicked (exit 1) before.
    let r = inline("param u\nloss = sum(i in 0..9223372036854775807, u)");
    assert_fails(&r, "<inline>:2:8", &["at most 1000000 values"]);
    let r = inline("param u\nloss = sum(i in 3..1, u)");
    assert_fails(&r, "<inline>:2:12", &["the range 3..1 is empty"]);
    // 10^12 entries ran out of memory (abort) before.
    let r = inline("param W[1000000,1000000]\nloss = W[1,1]");
    assert_fails(&r, "<inline>:1:8", &["unrolls to more than"]);
    let r = inline("data X[1000000,1000000] = 1\nparam u\nloss = u*X[1,1]");
    assert_fails(&r, "<inline>:1:7", &["unrolls to more than"]);
    let r = inline("param u\nloss = sum(i in 1..1000000, sum(j in 1..1000000, u))");
    assert_fails(&r, "<inline>:2:29", &["unrolls to more than"]);
    let r =
        inline("data x[1000] = 1\nparam u\nlet z[i] = sum(j in 1..100000, x[i]*u)\nloss = z[1]");
    assert_fails(&r, "<inline>:3:12", &["unrolls to more than"]);
    let r = inline("param w[2]\nloss = w[1] + w[-(-9223372036854775807 - 1)]");
    assert_fails(&r, "<inline>:2:17", &["an index must be an integer"]);
    let r = inline("param w[2]\nloss = w[99999999999999999999]");
    assert_fails(&r, "<inline>:2:10", &["an index must be an integer"]);
}

#[test]
fn huge_constants_are_refused_at_once() {
    // These folded exact constants of millions of digits (minutes, or out of memory) before.
    let r = inline("param u\nloss = u*((((2^64)^64)^64)^64)^64");
    assert_fails(&r, "<inline>:2:14", &["constant is too large"]);
    let r = inline("param u\nloss = u*prod(i in 1..100000, 1e100)");
    assert_fails(&r, "<inline>:2:10", &["constant is too large"]);
    let r = inline("param u\nloss = u*pow(pow(pow(10, 64), 64), 64)");
    assert_fails(&r, "<inline>:2:10", &["constant is too large"]);
    let r = inline("param u\nloss = 1e99999*u");
    assert_fails(&r, "<inline>:2:8", &["exponent is too large"]);
    let r = inline(&format!("param u\nloss = u*1{}", "0".repeat(50_000)));
    assert_fails(&r, "<inline>:2:10", &["constant is too large"]);
    // Large but reasonable constants are fine.
    let r = inline("param u = 1\nloss = u*1e10000*1e-10000 + 2^64^1");
    assert_eq!(r.code, 0, "{}", r.stderr);
}

// ---------------------------------------------------------------------------------------------
// --at

#[test]
fn at_with_an_unknown_parameter() {
    let r = run(&["param u = 1\nloss = u^2", "--at", "v=1"]);
    assert_fails(
        &r,
        "--at:1:1",
        &["`v` is not a parameter", "did you mean `u`?"],
    );
    let r = run(&["param w[2]\nloss = w[1]*w[2]", "--at", "w[1]=1, w[3]=2"]);
    assert_fails(&r, "--at:1:9", &["`w[3]` is not a parameter"]);
}

#[test]
fn at_with_a_non_number() {
    let r = run(&["param u = 1\nloss = u^2", "--at", "u=abc"]);
    assert_fails(&r, "--at:1:3", &["`abc` is not a number"]);
    let r = run(&["param u = 1\nloss = u^2", "--at", "u=1/0"]);
    assert_fails(&r, "--at:1:3", &["`1/0` is not a number"]);
    let r = run(&["param u = 1\nloss = u^2", "--at", "u"]);
    assert_fails(&r, "--at:1:1", &["expected NAME=VALUE"]);
}

#[test]
fn at_with_a_missing_value() {
    let r = run(&["param u\nparam v\nloss = u*v", "--at", "u=1"]);
    assert_fails_somewhere(&r, &["no value for v", "--at v="]);
    let r = run(&[
        "param u\nparam w[2]\nloss = u*w[1]*w[2]",
        "--at",
        "u=1,w[2]=3",
    ]);
    assert_fails_somewhere(&r, &["no value for w[1]"]);
}

// ---------------------------------------------------------------------------------------------
// Undefined at the point

fn assert_no_nan(r: &Run) {
    for text in [&r.stdout, &r.stderr] {
        let words: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).collect();
        assert!(
            !words
                .iter()
                .any(|w| w.eq_ignore_ascii_case("nan") || *w == "inf"),
            "NaN or inf printed:\n{text}"
        );
    }
}

#[test]
fn loss_undefined_at_the_point() {
    let r = inline("param u = -1\nloss = log(u)");
    assert_fails_somewhere(&r, &["undefined", "log of -1"]);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert_no_nan(&r);
    let r = run(&["param u\nloss = sqrt(u) + u", "--at", "u=-4"]);
    assert_fails_somewhere(&r, &["undefined", "of -4", "sqrt(u)"]);
    assert_no_nan(&r);
    // Defined loss, undefined gradient: sqrt(u^2) at 0.
    let r = run(&["sqrt(u^2)", "--at", "u=0"]);
    assert_fails_somewhere(&r, &["gradient", "undefined"]);
    assert_no_nan(&r);
    // Overflow is not a value either.
    let r = run(&["exp(exp(u))", "--at", "u=1000"]);
    assert_fails_somewhere(&r, &["undefined"]);
    assert_no_nan(&r);
}

#[test]
fn division_by_zero_at_the_point() {
    let r = inline("param u = 1\nloss = 1/(u - 1)");
    assert_fails_somewhere(&r, &["undefined", "division by zero"]);
    assert_no_nan(&r);
    let r = run(&["u/v", "--at", "u=1,v=0"]);
    assert_fails_somewhere(&r, &["division by zero"]);
    assert_no_nan(&r);
}

// ---------------------------------------------------------------------------------------------
// Many small malformed inputs: each exits 0 or 2, never panics.

#[test]
fn prefixes_of_a_valid_loss_never_panic() {
    let full = "data x = [0.5, -1]\nparam a[2] = [0.3, -0.2], b = 1/3\n\
                let out[i] = sum(j in 1..2, a[j]*tanh(b*x[i]))\nloss = mean(i, (out[i] - 1)^2) / 2";
    let mut cut: Vec<usize> = (0..full.len()).step_by(5).collect();
    cut.push(full.len());
    for end in cut {
        let r = inline(&full[..end]);
        assert!(
            r.code == 0 || r.code == 2,
            "exit {} for {:?}:\n{}",
            r.code,
            &full[..end],
            r.stderr
        );
        if r.code == 2 {
            assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
        }
    }
}

#[test]
fn tabs_long_lines_and_typos_display_well() {
    // A tab shows as one space, so the caret sits under the name.
    let e = eomderive::lang::parse_str("param u = 0.3\nloss =\ttahn(u)").unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("2 | loss = tahn(u)\n  |        ^^^^"),
        "{shown}"
    );
    assert!(shown.contains("did you mean `tanh`?"), "{shown}");
    // A very long line shows a window around the place, with the caret inside it.
    let long = format!("loss = {} + foo(u)", vec!["u"; 400].join("+"));
    let shown = eomderive::lang::parse_str(&format!("param u\n{long}"))
        .unwrap_err()
        .to_string();
    let source_line = shown.lines().find(|l| l.starts_with("2 | ")).unwrap();
    assert!(
        source_line.len() < 200 && source_line.starts_with("2 | ..."),
        "{shown}"
    );
    let caret = shown
        .lines()
        .last()
        .filter(|l| l.contains('^'))
        .unwrap_or_else(|| {
            shown
                .lines()
                .find(|l| l.trim_start().starts_with("| ") && l.contains('^'))
                .unwrap()
        });
    let col = caret.find('^').unwrap();
    assert_eq!(&source_line[col..col + 3], "foo", "{shown}");
}

#[test]
fn bad_weight_decay() {
    let r = inline("param u = 1\nloss = u^2\nweight_decay = -0.1");
    assert_fails(
        &r,
        "<inline>:3:16",
        &[
            "the weight decay is negative (-1/10)",
            "λ must be 0 or more",
        ],
    );
    let r = inline("param u = 1\nloss = u^2\nweight_decay = u/10");
    assert_fails(
        &r,
        "<inline>:3:16",
        &["the weight decay must be a constant"],
    );
    let r = inline("param u = 1\nweight_decay = 0.1\nloss = u^2\nweight_decay = 0.2");
    assert_fails(
        &r,
        "<inline>:4:1",
        &["a second `weight_decay` line", "line 2"],
    );
    let r = inline("param weight_decay = 1\nloss = weight_decay^2");
    assert_fails(
        &r,
        "<inline>:1:7",
        &["expected a name", "`weight_decay` is a keyword"],
    );
    for (flag, phrase) in [
        ("-0.5", "must be 0 or more"),
        ("abc", "is not a number"),
        ("1/0", "is not a number"),
    ] {
        let r = run(&["u^2", "--weight-decay", flag]);
        assert_fails_somewhere(&r, &[phrase]);
    }
}

// ---------------------------------------------------------------------------------------------
// Settings: `optimizer`, `momentum`, `rho_ratio`

/// The library's error for `src`: bad input (exit status 2) at `line:column`, whose message
/// contains `message` and whose help contains `help`. The binary must say the same.
fn assert_setting_error(src: &str, (line, column): (usize, usize), message: &str, help: &str) {
    let err = eomderive::lang::parse_str(src).expect_err(src);
    assert_eq!(err.exit_code(), 2, "{err}");
    let loc = err.location.as_ref().expect("a location");
    assert_eq!((loc.line, loc.column), (line, column), "{err}");
    assert!(
        err.message.contains(message),
        "expected `{message}` in:\n{err}"
    );
    let given = err.help.as_deref().unwrap_or_default();
    assert!(
        given.contains(help),
        "expected the help `{help}` in:\n{err}"
    );
    // The source line is shown with a caret under the place.
    let shown = err.to_string();
    let source_line = src.lines().nth(line - 1).unwrap();
    assert!(
        shown.contains(&format!("{line} | {source_line}\n")),
        "{shown}"
    );
    let r = inline(src);
    assert_fails(&r, &format!("<inline>:{line}:{column}"), &[message, help]);
    let caret = r
        .stderr
        .lines()
        .find_map(|l| {
            let (_, under) = l.split_once(" | ")?;
            (under.contains('^') && under.chars().all(|c| c == ' ' || c == '^')).then_some(under)
        })
        .unwrap();
    assert_eq!(caret.find('^').unwrap(), column - 1, "{}", r.stderr);
}

const NAMES: &str = "the optimizers are gd, heavy-ball, nesterov, extragradient, sam, sgd";

#[test]
fn unknown_optimizer_lists_the_names_and_suggests_a_close_one() {
    for (typo, meant) in [
        ("heavyball", "heavy-ball"),
        ("heavy_ball", "heavy-ball"),
        ("heavy", "heavy-ball"),
        ("Heavy-Ball", "heavy-ball"),
        ("nesterow", "nesterov"),
        ("nestrov", "nesterov"),
        ("extra", "extragradient"),
        ("sma", "sam"),
    ] {
        assert_setting_error(
            &format!("param u = 1\noptimizer = {typo}\nloss = u^2"),
            (2, 13),
            &format!("unknown optimizer `{typo}` ({NAMES})"),
            &format!("did you mean `{meant}`?"),
        );
    }
    for far in ["momentum", "adamw", "lbfgs"] {
        assert_setting_error(
            &format!("param u = 1\noptimizer = {far}\nloss = u^2"),
            (2, 13),
            &format!("unknown optimizer `{far}` ({NAMES})"),
            "write one of them, e.g. `optimizer = heavy-ball`",
        );
    }
    // `sgd` is a name the file knows.
    let m = eomderive::lang::parse_str("param u\noptimizer = sgd\nloss = u^2").unwrap();
    assert_eq!(
        m.settings.optimizer,
        Some((eomderive::series::Method::Sgd, 2))
    );
    // The value is a name, not an expression.
    assert_setting_error(
        "param u\noptimizer = 3\nloss = u^2",
        (2, 13),
        "expected an optimizer name",
        "write one of the names gd, heavy-ball, nesterov, extragradient, sam, sgd",
    );
}

#[test]
fn momentum_must_be_a_constant_in_0_1() {
    for (value, got) in [
        ("1", "1"),
        ("-0.1", "-1/10"),
        ("1.5", "3/2"),
        ("2 - 1", "1"),
    ] {
        assert_setting_error(
            &format!("param u\noptimizer = heavy-ball\nmomentum = {value}\nloss = u^2"),
            (3, 12),
            &format!("the momentum must be in [0, 1) (got {got}); β = 1 never forgets a step"),
            "write a β with 0 ≤ β < 1, e.g. `momentum = 0.9`",
        );
    }
    // Checked without an optimizer line too.
    assert_setting_error(
        "param u\nmomentum = 1\nloss = u^2",
        (2, 12),
        "the momentum must be in [0, 1) (got 1)",
        "0 ≤ β < 1",
    );
    assert_setting_error(
        "param u\nmomentum = u/10\nloss = u^2",
        (2, 12),
        "the momentum must be a constant",
        "write a number, e.g. `momentum = 0.9`; it may not depend on parameters",
    );
    assert_setting_error(
        "param u\noptimizer = sam\nrho_ratio = 2*u\nloss = u^2",
        (3, 13),
        "the rho ratio (SAM's ρ/η) must be a constant",
        "write a number, e.g. `rho_ratio = 1`",
    );
    // A name declared later is not declared yet.
    assert_setting_error(
        "param u\nmomentum = beta\ndata beta = 0.5\nloss = u^2",
        (2, 12),
        "`beta` is not declared",
        "declare it before use",
    );
}

#[test]
fn each_setting_is_given_once() {
    for (word, first, second) in [
        ("optimizer", "sam", "gd"),
        ("momentum", "0.9", "0.5"),
        ("rho_ratio", "1", "2"),
    ] {
        assert_setting_error(
            &format!("param u\n{word} = {first}\nloss = u^2\n{word} = {second}"),
            (4, 1),
            &format!("a second `{word}` line (the first is on line 2)"),
            &format!("give `{word}` once: remove one of the two lines"),
        );
    }
    assert_setting_error(
        "param u; momentum = 0.9; momentum = 0.5; loss = u^2",
        (1, 26),
        "a second `momentum` line (the first is on line 1)",
        "remove one of the two lines",
    );
}

#[test]
fn a_parameter_must_suit_the_files_optimizer() {
    for method in ["gd", "extragradient", "sam"] {
        assert_setting_error(
            &format!("param u\noptimizer = {method}\nmomentum = 0.9\nloss = u^2"),
            (3, 1),
            &format!(
                "`momentum` applies to heavy-ball and nesterov only; this file's optimizer is {method} (line 2)"
            ),
            "remove the `momentum` line, or choose `optimizer = heavy-ball` or `optimizer = nesterov`",
        );
    }
    for method in ["gd", "heavy-ball", "nesterov", "extragradient"] {
        assert_setting_error(
            &format!("param u\nloss = u^2\nrho_ratio = 2\noptimizer = {method}"),
            (3, 1),
            &format!("`rho_ratio` applies to sam only; this file's optimizer is {method} (line 4)"),
            "remove the `rho_ratio` line, or choose `optimizer = sam`",
        );
    }
    // Both misplaced: the first in the file is reported.
    assert_setting_error(
        "param u\nrho_ratio = 2\nmomentum = 0.5\noptimizer = gd\nloss = u^2",
        (2, 1),
        "`rho_ratio` applies to sam only; this file's optimizer is gd (line 4)",
        "`optimizer = sam`",
    );
    // Where they suit the optimizer, or there is no optimizer line, the file is fine.
    for ok in [
        "param u\noptimizer = nesterov\nmomentum = 0.5\nloss = u^2",
        "param u\noptimizer = sam\nrho_ratio = -1\nloss = u^2",
        "param u\nmomentum = 0.5\nrho_ratio = 2\nloss = u^2",
    ] {
        assert!(eomderive::lang::parse_str(ok).is_ok(), "{ok}");
    }
}

// ---------------------------------------------------------------------------------------------
// SGD: `batches`, `batch_order`, --batches, --batch-order, and the split into batches

#[test]
fn batches_must_be_a_whole_number_1_or_more() {
    for (value, got) in [
        ("0", "0"),
        ("1.5", "3/2"),
        ("-2", "-2"),
        ("1/3", "1/3"),
        ("2 - 2", "0"),
    ] {
        assert_setting_error(
            &format!("param u\noptimizer = sgd\nbatches = {value}\nloss = u^2"),
            (3, 11),
            &format!("the number of batches must be a whole number, 1 or more (got {got})"),
            "write e.g. `batches = 4`",
        );
    }
    // Checked without an optimizer line too, and the value must be a constant.
    assert_setting_error(
        "param u\nbatches = 0.5\nloss = u^2",
        (2, 11),
        "the number of batches must be a whole number, 1 or more (got 1/2)",
        "equal batches",
    );
    assert_setting_error(
        "param u\nbatches = 2*u\nloss = u^2",
        (2, 11),
        "the number of batches must be a constant",
        "write a whole number, e.g. `batches = 4`; it may not depend on parameters",
    );
    assert_setting_error(
        "param u\nbatches = 1e30\nloss = u^2",
        (2, 11),
        "the number of batches must be a whole number, 1 or more (got 1000000000000000000000000000000)",
        "batches = 4",
    );
}

#[test]
fn unknown_batch_order_lists_the_two() {
    for (word, help) in [
        (
            "random",
            "write `batch_order = cyclic` or `batch_order = shuffled`",
        ),
        (
            "sequential",
            "write `batch_order = cyclic` or `batch_order = shuffled`",
        ),
        ("Cyclic", "did you mean `cyclic`?"),
        ("shufled", "did you mean `shuffled`?"),
    ] {
        assert_setting_error(
            &format!("param u\nbatch_order = {word}\nloss = u^2"),
            (2, 15),
            &format!("unknown batch order `{word}` (the orders are cyclic and shuffled)"),
            help,
        );
    }
    // The value is a name, not an expression.
    assert_setting_error(
        "param u\nbatch_order = 2\nloss = u^2",
        (2, 15),
        "expected a batch order name",
        "write `batch_order = cyclic` or `batch_order = shuffled`",
    );
}

#[test]
fn each_batch_setting_is_given_once() {
    for (word, first, second) in [("batches", "2", "4"), ("batch_order", "cyclic", "shuffled")] {
        assert_setting_error(
            &format!("param u\n{word} = {first}\nloss = u^2\n{word} = {second}"),
            (4, 1),
            &format!("a second `{word}` line (the first is on line 2)"),
            &format!("give `{word}` once: remove one of the two lines"),
        );
    }
}

#[test]
fn batch_settings_must_suit_the_files_optimizer() {
    for method in ["gd", "heavy-ball", "nesterov", "extragradient", "sam"] {
        assert_setting_error(
            &format!("param u\noptimizer = {method}\nbatches = 2\nloss = u^2"),
            (3, 1),
            &format!("`batches` applies to sgd only; this file's optimizer is {method} (line 2)"),
            "remove the `batches` line, or choose `optimizer = sgd`",
        );
        assert_setting_error(
            &format!("param u\nbatch_order = cyclic\nloss = u^2\noptimizer = {method}"),
            (2, 1),
            &format!(
                "`batch_order` applies to sgd only; this file's optimizer is {method} (line 4)"
            ),
            "remove the `batch_order` line, or choose `optimizer = sgd`",
        );
    }
    // The first misplaced line in the file is reported, whichever setting it is.
    assert_setting_error(
        "param u\nbatches = 2\nmomentum = 0.5\noptimizer = gd\nloss = u^2",
        (2, 1),
        "`batches` applies to sgd only; this file's optimizer is gd (line 4)",
        "`optimizer = sgd`",
    );
    // SGD has no momentum or ratio.
    assert_setting_error(
        "param u\noptimizer = sgd\nbatches = 2\nmomentum = 0.5\nloss = u^2",
        (4, 1),
        "`momentum` applies to heavy-ball and nesterov only; this file's optimizer is sgd (line 2)",
        "remove the `momentum` line",
    );
    assert_setting_error(
        "param u\noptimizer = sgd\nrho_ratio = 1\nloss = u^2",
        (3, 1),
        "`rho_ratio` applies to sam only; this file's optimizer is sgd (line 2)",
        "`optimizer = sam`",
    );
    for ok in [
        "param u\noptimizer = sgd\nbatches = 2\nbatch_order = cyclic\nloss = u^2",
        "param u\nbatch_order = shuffled\nbatches = 3\nloss = u^2",
        "param u\noptimizer = sgd\nloss = u^2",
    ] {
        assert!(eomderive::lang::parse_str(ok).is_ok(), "{ok}");
    }
}

/// Four examples, the loss on line 4 from column 8.
const FOUR: &str = "data x[4] = [1, 2, 3, 4]\ndata y[4] = [0, 1, 0, 1]\nparam w = 0.5\nloss = mean(i, (w*x[i] - y[i])^2)";

/// Asserts a library error at the loss of [`FOUR`] (line 4, column 8).
fn assert_at_the_loss(
    err: &eomderive::Error,
    kind: eomderive::ErrorKind,
    message: &str,
    help: &str,
) {
    assert_eq!(err.kind, kind, "{err}");
    assert_eq!(err.exit_code(), 2, "{err}");
    assert_eq!(err.message, message, "{err}");
    assert_eq!(err.help.as_deref(), Some(help), "{err}");
    let loc = err.location.as_ref().expect("a location");
    assert_eq!((loc.line, loc.column), (4, 8), "{err}");
    let shown = err.to_string();
    assert!(
        shown.contains("4 | loss = mean(i, (w*x[i] - y[i])^2)\n  |        ^^^^^^^^^"),
        "{shown}"
    );
}

#[test]
fn unequal_batches_are_refused_with_the_divisors() {
    use eomderive::ErrorKind::Usage;
    let mut m = eomderive::lang::parse_str(FOUR).unwrap();
    assert_at_the_loss(
        &m.batch_losses(3).unwrap_err(),
        Usage,
        "4 examples do not split into 3 equal batches (4 = 1·3 + 1)",
        "choose a number of batches that divides 4: --batches 1, 2 or 4",
    );
    assert_at_the_loss(
        &m.batch_losses(5).unwrap_err(),
        Usage,
        "4 examples do not split into 5 equal batches (4 = 0·5 + 4)",
        "choose a number of batches that divides 4: --batches 1, 2 or 4",
    );
    assert_at_the_loss(
        &m.batch_losses(0).unwrap_err(),
        Usage,
        "SGD needs at least 1 batch (got 0)",
        "give --batches m (or a `batches = m` line) with m ≥ 1; 1 batch is plain GD",
    );
    for ok in [1, 2, 4] {
        assert_eq!(m.batch_losses(ok).unwrap().len(), ok);
    }
    // Six examples; and a prime number of them, which only 1 and N divide.
    let mut m = eomderive::lang::parse_str("param w\nloss = mean(i in 1..6, (w - i)^2)").unwrap();
    let e = m.batch_losses(4).unwrap_err();
    assert_eq!(
        e.message,
        "6 examples do not split into 4 equal batches (6 = 1·4 + 2)"
    );
    assert_eq!(
        e.help.as_deref(),
        Some("choose a number of batches that divides 6: --batches 1, 2, 3 or 6")
    );
    let mut m = eomderive::lang::parse_str("param w\nloss = mean(i in 1..7, (w - i)^2)").unwrap();
    let e = m.batch_losses(2).unwrap_err();
    assert_eq!(
        e.help.as_deref(),
        Some("choose a number of batches that divides 7: --batches 1 or 7")
    );
    // Many divisors are shortened.
    let mut m = eomderive::lang::parse_str("param w\nloss = mean(i in 1..720, (w - i)^2)").unwrap();
    let e = m.batch_losses(7).unwrap_err();
    assert_eq!(
        e.help.as_deref(),
        Some("choose a number of batches that divides 720: --batches 1, 2, 3, 4, 5, 6, 8, 9, … or 720")
    );
}

#[test]
fn sgd_needs_a_mean_over_examples() {
    let message = "SGD splits the examples of `loss = mean(i, …)` into batches; this loss is not a mean over examples";
    let help = "write the loss as `loss = mean(i, per-example term)`, e.g. `loss = mean(i, (w*x[i] - y[i])^2)`";
    for (src, (line, column)) in [
        (
            "data x = [1, 2]\nparam w\nloss = sum(i, (w*x[i])^2)",
            (3, 8),
        ),
        (
            "data x = [1, 2]\nparam w\nloss = mean(i, (w*x[i])^2) / 2",
            (3, 8),
        ),
        ("param u, v\nloss = u*v - 1", (2, 8)),
        ("u*v - 1", (1, 1)),
    ] {
        let mut m = eomderive::lang::parse_str(src).unwrap();
        let err = m.batch_losses(2).unwrap_err();
        assert_eq!(err.kind, eomderive::ErrorKind::Semantic, "{err}");
        assert_eq!(err.exit_code(), 2);
        assert_eq!(err.message, message);
        assert_eq!(err.help.as_deref(), Some(help));
        let loc = err.location.as_ref().expect("a location");
        assert_eq!((loc.line, loc.column), (line, column), "{src}: {err}");
    }
}

#[test]
fn bad_batch_flags_are_usage_errors() {
    let four = TempFile::new("four.expr", FOUR.as_bytes());
    for (args, message, help) in [
        (
            vec!["u^2", "--optimizer", "sgd", "--batches", "0"],
            "the number of batches must be a whole number, 1 or more (got 0)",
            "",
        ),
        (
            vec!["u^2", "--optimizer", "sgd", "--batches", "1.5"],
            "the number of batches must be a whole number, 1 or more (got `1.5`)",
            "",
        ),
        (
            vec!["u^2", "--optimizer", "sgd", "--batches", "-2"],
            "the number of batches must be a whole number, 1 or more (got `-2`)",
            "",
        ),
        (
            vec!["u^2", "--optimizer", "sgd", "--batches", "2", "--batch-order", "random"],
            "unknown batch order `random`: the orders are cyclic and shuffled",
            "",
        ),
        (
            vec![four.path(), "--batches", "2"],
            "--batches applies to sgd only, and the optimizer is gd (plain gradient descent)",
            "choose --optimizer sgd, or drop --batches",
        ),
        (
            vec![four.path(), "--optimizer", "heavy-ball", "--batches", "2"],
            "--batches applies to sgd only, and --optimizer is heavy-ball",
            "choose --optimizer sgd, or drop --batches",
        ),
        (
            vec![four.path(), "--batch-order", "cyclic"],
            "--batch-order applies to sgd only, and the optimizer is gd (plain gradient descent)",
            "choose --optimizer sgd, or drop --batch-order",
        ),
        (
            vec![four.path(), "--optimizer", "sgd"],
            "SGD needs the number of minibatches: --optimizer is sgd, and neither --batches nor a `batches` line gives it",
            "add --batches m (or a `batches = m` line)",
        ),
        (
            vec![four.path(), "--optimizer", "sgd", "--batch-order", "cyclic"],
            "SGD needs the number of minibatches",
            "add --batches m (or a `batches = m` line)",
        ),
        (
            vec![four.path(), "--optimizer", "sgd", "--batches", "2", "--momentum", "0.5"],
            "--momentum applies to heavy-ball and nesterov only, and --optimizer is sgd",
            "choose --optimizer heavy-ball or nesterov, or drop the momentum",
        ),
        (
            vec![four.path(), "--optimizer", "sgd", "--batches", "2", "--rho-ratio", "1"],
            "--rho-ratio applies to sam only, and --optimizer is sgd",
            "choose --optimizer sam",
        ),
        (
            vec!["--generic", "--batches", "2"],
            "--batches applies to sgd only",
            "choose --optimizer sgd, or drop --batches",
        ),
    ] {
        let r = run(&args);
        assert_fails_somewhere(&r, &[message, help]);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }
    // `--optimizer` names sgd among the methods.
    let r = run(&["u^2", "--optimizer", "adamw"]);
    assert_fails_somewhere(
        &r,
        &["the optimizers are gd, heavy-ball, nesterov, extragradient, sam, sgd"],
    );
}

#[test]
fn the_files_batch_lines_need_sgd() {
    // Without an optimizer line or flag, a `batches` line alone does not choose SGD.
    let f = TempFile::new(
        "lone-batches.expr",
        b"data x[4] = [1, 2, 3, 4]\nparam w = 0.5\nbatches = 2\nloss = mean(i, (w*x[i] - 1)^2)\n",
    );
    assert_fails_somewhere(
        &run(&[f.path()]),
        &[
            "the `batches` line (line 3) applies to sgd only, and the optimizer is gd (plain gradient descent)",
            "add `optimizer = sgd`",
        ],
    );
    let f = TempFile::new(
        "lone-order.expr",
        b"param w = 0.5\nbatch_order = cyclic\nloss = w^2\n",
    );
    assert_fails_somewhere(
        &run(&[f.path()]),
        &[
            "the `batch_order` line (line 2) applies to sgd only",
            "add `optimizer = sgd`",
        ],
    );
    // `optimizer = sgd` with no batches anywhere.
    let f = TempFile::new(
        "sgd-no-batches.expr",
        b"param w = 0.5\noptimizer = sgd\nloss = w^2\n",
    );
    assert_fails_somewhere(
        &run(&[f.path()]),
        &[
            "SGD needs the number of minibatches: the file's optimizer (line 2) is sgd",
            "add a `batches = m` line (or give --batches m)",
        ],
    );
    // Another method on the command line sets the file's batch lines aside, as for momentum.
    let f = TempFile::new(
        "sgd-file.expr",
        b"data x[4] = [1, 2, 3, 4]\nparam w = 0.5\noptimizer = sgd\nbatches = 2\nbatch_order = cyclic\nloss = mean(i, (w*x[i] - 1)^2)\n",
    );
    let r = run(&[f.path(), "--optimizer", "gd", "--order", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&[f.path(), "--optimizer", "heavy-ball", "--order", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn batches_that_do_not_divide_the_examples_fail_through_the_binary() {
    let four = TempFile::new("four-sgd.expr", FOUR.as_bytes());
    let r = run(&[four.path(), "--optimizer", "sgd", "--batches", "3"]);
    assert_fails(
        &r,
        &format!("{}:4:8", four.path()),
        &[
            "4 examples do not split into 3 equal batches (4 = 1·3 + 1)",
            "choose a number of batches that divides 4: --batches 1, 2 or 4",
        ],
    );
}

#[test]
fn sgd_on_a_loss_that_is_not_a_mean_fails_through_the_binary() {
    let f = TempFile::new(
        "not-a-mean.expr",
        b"data x = [1, 2]\nparam w = 0.5\nloss = sum(i, (w*x[i])^2)\n",
    );
    let r = run(&[f.path(), "--optimizer", "sgd", "--batches", "2"]);
    assert_fails(
        &r,
        &format!("{}:3:8", f.path()),
        &[
            "this loss is not a mean over examples",
            "write the loss as `loss = mean(i, per-example term)`",
        ],
    );
    let r = run(&["u*v - 1", "--optimizer", "sgd", "--batches", "2"]);
    assert_fails(
        &r,
        "<inline>:1:1",
        &["this loss is not a mean over examples"],
    );
}
