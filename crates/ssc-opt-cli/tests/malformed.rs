//! Bad input end to end: the `ssc-opt` binary on every file of `tests/malformed/`, plus the
//! output-path rules and `--no-optimize` determinism.
//!
//! The promise checked: a bad file ends with exactly one `ssc-opt: error:` line naming the file
//! and the node or field at fault, exit code 2, no panic, and nothing written (no output file,
//! no leftover temporary). Expectations come from `tests/malformed/expected.txt`, which
//! `scripts/make_malformed.py` writes together with the corpus; a corpus file without an entry
//! (or an entry without a file) fails the test, so the two cannot drift apart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ssc-opt");

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/malformed")
}

/// Files in the corpus directory that describe it rather than being cases.
const NOT_CASES: [&str; 2] = ["README.md", "expected.txt"];

#[derive(Debug)]
struct Expect {
    outcome: String,
    fragment: String,
}

fn manifest() -> BTreeMap<String, Expect> {
    let text = std::fs::read_to_string(corpus_dir().join("expected.txt")).unwrap();
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut parts = line.splitn(3, '\t');
        let (Some(file), Some(outcome)) = (parts.next(), parts.next()) else {
            panic!("expected.txt: bad line `{line}`");
        };
        let fragment = parts.next().unwrap_or("").to_string();
        assert!(
            ["error", "warn", "ok", "data"].contains(&outcome),
            "expected.txt: unknown outcome in `{line}`"
        );
        let prev = out.insert(
            file.to_string(),
            Expect {
                outcome: outcome.to_string(),
                fragment,
            },
        );
        assert!(prev.is_none(), "expected.txt lists `{file}` twice");
    }
    out
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run ssc-opt")
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Checks the error contract; returns a description of each way `o` breaks it.
fn error_problems(o: &Output, names: &[&str]) -> Vec<String> {
    let err = stderr_of(o);
    let mut p = Vec::new();
    if o.status.code() != Some(2) {
        p.push(format!("exit status {:?}, want 2", o.status.code()));
    }
    if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        p.push("panicked".into());
    }
    let lines: Vec<&str> = err.lines().collect();
    if lines.len() != 1 {
        p.push(format!("{} stderr lines, want 1", lines.len()));
    }
    if err.len() > 400 {
        p.push(format!(
            "a {}-character message, want at most 400",
            err.len()
        ));
    }
    if !err.starts_with("ssc-opt: error: ") {
        p.push("stderr does not start with `ssc-opt: error: `".into());
    }
    for n in names.iter().filter(|n| !n.is_empty()) {
        if !err.contains(n) {
            p.push(format!("stderr lacks `{n}`"));
        }
    }
    if !o.stdout.is_empty() {
        p.push("stdout is not empty".into());
    }
    p
}

#[test]
fn every_corpus_file_meets_its_expectation() {
    let dir = corpus_dir();
    let expected = manifest();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let mut failures = Vec::new();
    let mut seen = Vec::new();

    for name in dir_listing(&dir) {
        if NOT_CASES.contains(&name.as_str()) {
            continue;
        }
        seen.push(name.clone());
        let Some(exp) = expected.get(&name) else {
            failures.push(format!(
                "{name}: not in tests/malformed/expected.txt (add it to scripts/make_malformed.py)"
            ));
            continue;
        };
        if !readme.contains(&format!("`{name}`")) {
            failures.push(format!("{name}: not in tests/malformed/README.md"));
        }
        if exp.outcome == "data" {
            continue;
        }
        let input = dir.join(&name);
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("out.onnx");
        let o = run(&[input.as_os_str(), "-o".as_ref(), out.as_os_str()]);
        let err = stderr_of(&o);
        let mut problems = Vec::new();
        match exp.outcome.as_str() {
            "error" => {
                problems.extend(error_problems(&o, &[&name, &exp.fragment]));
                if out.exists() {
                    problems.push("the output file was written".into());
                }
                let left = dir_listing(out_dir.path());
                if !left.is_empty() {
                    problems.push(format!("left in the output dir: {left:?}"));
                }
                // `inspect` fails the same way.
                let i = run(&["inspect".as_ref(), input.as_os_str()]);
                for p in error_problems(&i, &[&name, &exp.fragment]) {
                    problems.push(format!("inspect: {p}"));
                }
            }
            "warn" | "ok" => {
                if !o.status.success() {
                    problems.push(format!("exit status {:?}, want 0", o.status.code()));
                }
                if err.contains("panicked") {
                    problems.push("panicked".into());
                }
                let warnings: Vec<&str> = err
                    .lines()
                    .filter(|l| l.starts_with("ssc-opt: warning: "))
                    .collect();
                if exp.outcome == "warn"
                    && !warnings
                        .iter()
                        .any(|w| w.contains(&exp.fragment) && w.contains(&name))
                {
                    problems.push(format!(
                        "no warning naming the file with `{}`",
                        exp.fragment
                    ));
                }
                if exp.outcome == "ok" && !warnings.is_empty() {
                    problems.push(format!("unexpected warnings: {warnings:?}"));
                }
                if dir_listing(out_dir.path()) != ["out.onnx"] {
                    problems.push(format!(
                        "output dir holds {:?}, want just out.onnx",
                        dir_listing(out_dir.path())
                    ));
                }
                // What was written is itself a readable model.
                let i = run(&["inspect".as_ref(), out.as_os_str()]);
                if !i.status.success() {
                    problems.push(format!("inspect of the output failed: {}", stderr_of(&i)));
                }
            }
            _ => unreachable!(),
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{name}: {}\n    stderr: {err}",
                problems.join("; ")
            ));
        }
    }
    for name in expected.keys() {
        if !seen.contains(name) {
            failures.push(format!(
                "{name}: listed in expected.txt but missing from the corpus"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn valid_model() -> PathBuf {
    corpus_dir().join("valid.onnx")
}

#[test]
fn output_in_a_missing_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir");
    let out = missing.join("out.onnx");
    let o = run(&[valid_model().as_os_str(), "-o".as_ref(), out.as_os_str()]);
    let missing_s = missing.display().to_string();
    let problems = error_problems(&o, &[&missing_s, "does not exist"]);
    assert!(problems.is_empty(), "{problems:?}: {}", stderr_of(&o));
    assert!(dir_listing(tmp.path()).is_empty());
}

#[test]
fn output_identical_to_input_needs_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("m.onnx");
    std::fs::copy(valid_model(), &model).unwrap();
    let original = std::fs::read(&model).unwrap();

    // The same file, spelled the same or differently, is refused and left alone.
    let dotted = tmp.path().join(".").join("m.onnx");
    for out in [&model, &dotted] {
        let o = run(&[model.as_os_str(), "-o".as_ref(), out.as_os_str()]);
        let problems = error_problems(&o, &["m.onnx", "output is the input file", "--overwrite"]);
        assert!(problems.is_empty(), "{problems:?}: {}", stderr_of(&o));
        assert_eq!(std::fs::read(&model).unwrap(), original);
        assert_eq!(dir_listing(tmp.path()), ["m.onnx"]);
    }

    // With --overwrite it is replaced in place by a valid model, with no temporaries left.
    let o = run(&[
        model.as_os_str(),
        "-o".as_ref(),
        model.as_os_str(),
        "--overwrite".as_ref(),
    ]);
    assert!(o.status.success(), "{}", stderr_of(&o));
    assert_eq!(dir_listing(tmp.path()), ["m.onnx"]);
    let i = run(&["inspect".as_ref(), model.as_os_str()]);
    assert!(i.status.success(), "{}", stderr_of(&i));
    assert!(!i.stdout.is_empty());
}

#[test]
fn inspect_of_a_missing_file_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("absent.onnx");
    let o = run(&["inspect".as_ref(), missing.as_os_str()]);
    let problems = error_problems(&o, &["absent.onnx"]);
    assert!(problems.is_empty(), "{problems:?}: {}", stderr_of(&o));
}

/// `--no-optimize` output depends only on the input: two runs write identical bytes.
#[test]
fn no_optimize_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for i in 0..2 {
        let out = tmp.path().join(format!("out{i}.onnx"));
        let o = run(&[
            valid_model().as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--no-optimize".as_ref(),
            "-q".as_ref(),
        ]);
        assert!(o.status.success(), "{}", stderr_of(&o));
        assert!(o.stderr.is_empty(), "-q printed: {}", stderr_of(&o));
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert!(!outputs[0].is_empty());
    assert!(outputs[0] == outputs[1], "two --no-optimize runs differ");

    // And the output round-trips to itself.
    let again = tmp.path().join("again.onnx");
    let first = tmp.path().join("out0.onnx");
    let o = run(&[
        first.as_os_str(),
        "-o".as_ref(),
        again.as_os_str(),
        "--no-optimize".as_ref(),
        "-q".as_ref(),
    ]);
    assert!(o.status.success(), "{}", stderr_of(&o));
    assert!(
        std::fs::read(&again).unwrap() == outputs[0],
        "not a fixed point"
    );
}
