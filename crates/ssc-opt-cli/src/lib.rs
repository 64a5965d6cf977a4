//! The `ssc-opt` command line: a thin layer over the `ssc-opt` library facade.
//!
//! All of it is [`run`], which takes the arguments and returns the exit code, so the binary
//! and the Python package's `ssc-opt` command are one program with the same messages and exit
//! codes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ssc_opt::{ExternalData, Options, SaveOptions};

/// Exit code for bad input or usage (clap uses 2 for usage errors too).
const EXIT_BAD_INPUT: u8 = 2;
/// Exit code when verification finds the optimised model wrong.
const EXIT_VERIFY_FAILED: u8 = 1;

#[derive(Parser, Debug)]
#[command(
    name = "ssc-opt",
    version,
    about = "Make CNNs with structured weights run as fast as their structure allows",
    long_about = "ssc-opt reads an ONNX model, finds structure hidden in its weights and rewrites \
                  the graph into exactly-equivalent, cheaper standard ONNX.\n\n\
                  Optimise a model:    ssc-opt model.onnx -o model.opt.onnx\n\
                  Look inside a model: ssc-opt inspect model.onnx",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    optimize: OptimizeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print opsets, inputs and outputs, op counts, parameters and per-layer MACs.
    Inspect(InspectArgs),
    /// Run a model on .npy or seeded random inputs and write one OUTPUT.npy per output.
    Run(RunArgs),
    /// Compile a model with the JIT and time it on seeded random inputs.
    Bench(BenchArgs),
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum EngineArg {
    /// The JIT when it covers the model, else the reference executor.
    Auto,
    /// The Cranelift/gemm JIT; nodes without a native kernel run through reference kernels.
    Jit,
    /// The reference executor (single-threaded, f64 accumulation).
    Reference,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// The ONNX model to benchmark.
    #[arg(value_name = "MODEL.onnx")]
    model: PathBuf,
    /// Fix a symbolic input shape, e.g. `input:1,3,224,224` (repeatable).
    #[arg(long = "input-shape", value_name = "NAME:DIMS")]
    input_shapes: Vec<String>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Timed runs.
    #[arg(long, default_value_t = 20)]
    iters: usize,
    /// Untimed warm-up runs.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Seed for the random inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also list every step with its kernel and median time (a per-node profile).
    #[arg(long)]
    kernels: bool,
    /// Give every convolution a dense kernel (no sparse-weight kernels): the baseline the
    /// per-layer kernel choice is measured against.
    #[arg(long)]
    dense_only: bool,
    /// No warnings on stderr.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The ONNX model to run.
    #[arg(value_name = "MODEL.onnx")]
    model: PathBuf,
    /// An input: `NAME=FILE.npy`, or `NAME=random` for seeded random data (repeatable). With no
    /// --input at all, every input is random.
    #[arg(long = "input", value_name = "NAME=FILE.npy|random")]
    inputs: Vec<String>,
    /// Where to write the outputs (one `NAME.npy` each; created if missing); nothing is
    /// written without it.
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Seed for random inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fix a symbolic input shape for random data, e.g. `input:1,3,224,224` (repeatable).
    #[arg(long = "input-shape", value_name = "NAME:DIMS")]
    input_shapes: Vec<String>,
    /// Print only the output lines, no summary or warnings.
    #[arg(short, long)]
    quiet: bool,
    /// The engine that runs the model.
    #[arg(long, value_enum, default_value_t = EngineArg::Auto)]
    engine: EngineArg,
    /// JIT worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Args, Debug)]
struct OptimizeArgs {
    /// The ONNX model to optimise.
    #[arg(value_name = "IN.onnx", required = true)]
    input: Option<PathBuf>,
    /// Where to write the optimised model (written atomically: never a partial file).
    #[arg(short, long, value_name = "OUT.onnx", required = true)]
    output: Option<PathBuf>,
    /// Copy the model through the IR without changing anything (a round-trip check).
    #[arg(long)]
    no_optimize: bool,
    /// Run only the exact clean-ups, not the structure-aware rewriting of convolutions.
    #[arg(long)]
    no_rewrite: bool,
    /// How the rewriter prices alternatives: `calibrated` (ONNX Runtime timings measured on the
    /// reference machine, the default), `macs` (fewest multiply-accumulates), or a calibration
    /// JSON written by scripts/calibrate_cost.py for your own machine.
    #[arg(long, value_name = "MODEL", default_value = "calibrated")]
    cost_model: String,
    /// Print a per-layer report to stdout: `text` or `json` (rewrites, then the weight structure
    /// of the output: kernel classes, MSWU tiles, N:M runs, per-output density).
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    report: Option<String>,
    /// Allow OUT to be IN itself (other existing files are replaced as `cp` would).
    #[arg(long)]
    overwrite: bool,
    /// Store weights in OUT.onnx.data (by default only when the model exceeds 2 GiB).
    #[arg(long)]
    external_data: bool,
    /// Fix a symbolic input shape, e.g. `input:1,3,224,224` (repeatable).
    #[arg(long = "input-shape", value_name = "NAME:DIMS")]
    input_shapes: Vec<String>,
    /// Check the result on N seeded random inputs with the reference executor; if the outputs
    /// drift past --verify-tol, nothing is written and the exit code is 1.
    #[arg(long, value_name = "N", default_value_t = 2)]
    verify: usize,
    /// Skip verification.
    #[arg(long, conflicts_with = "verify")]
    no_verify: bool,
    /// Largest accepted norm-wise relative error in verification.
    #[arg(long, value_name = "TOL", default_value_t = 1e-4)]
    verify_tol: f64,
    /// Write the types the ops compute where the model declares others (by default such a
    /// declaration gets a warning and is written back as it was).
    #[arg(long)]
    fix_types: bool,
    /// No progress, summary or warnings on stderr.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args, Debug)]
struct InspectArgs {
    /// The ONNX model to inspect.
    #[arg(value_name = "IN.onnx")]
    input: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Fix a symbolic input shape, e.g. `input:1,3,224,224` (repeatable).
    #[arg(long = "input-shape", value_name = "NAME:DIMS")]
    input_shapes: Vec<String>,
    /// No warnings on stderr.
    #[arg(short, long)]
    quiet: bool,
}

/// Progress on stderr: a spinner naming the phase, hidden with `--quiet` or off a terminal.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        if quiet {
            return Progress { bar: None };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("static template"),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress { bar: Some(bar) }
    }
    fn phase(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(msg.to_string());
        }
    }
    /// A warning line on stderr, printed around the spinner so neither garbles the other
    /// (silent with `--quiet`, like the rest of the progress output).
    fn warn(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.suspend(|| eprintln!("ssc-opt: warning: {msg}"));
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Prints the loader's warnings (which name the file) and the inference warnings of `model`
/// (which name a value; the file is added), one line each, unless `quiet`.
fn print_warnings(path: &Path, loaded: &[String], inferred: &[String], quiet: bool) {
    if quiet {
        return;
    }
    for w in loaded {
        eprintln!("ssc-opt: warning: {w}");
    }
    for w in inferred {
        eprintln!("ssc-opt: warning: {}: {w}", path.display());
    }
}

/// A library error from work on the model at `path`, naming the file (errors of reading it
/// name it already).
fn in_file(path: &Path, e: ssc_opt::Error) -> anyhow::Error {
    match e {
        ssc_opt::Error::Onnx(_) | ssc_opt::Error::VerificationFailed(_) => e.into(),
        e => anyhow!("{}: {e}", path.display()),
    }
}

/// `println!` that returns the write error instead of panicking, so a closed pipe
/// (`ssc-opt bench ... | head`) ends the command quietly (see `main`).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*)
    }};
}

/// `print!` that returns the write error (see [`outln`]).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut o = std::io::stdout().lock();
        write!(o, $($t)*).and_then(|()| o.flush())
    }};
}

/// Whether `e` is stdout's reader having gone away: the output was cut short on purpose.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Runs the command line on `args` (the program name first, as `std::env::args_os` gives
/// them) and returns the exit code: 0 on success, 1 when verification fails (nothing is
/// written), 2 for bad input or usage. `--help` and `--version` print and return 0.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout, usage errors to stderr, as `Cli::parse` would.
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(EXIT_BAD_INPUT);
        }
    };
    let result = match cli.command {
        Some(Command::Inspect(a)) => cmd_inspect(&a),
        Some(Command::Run(a)) => cmd_run(&a),
        Some(Command::Bench(a)) => cmd_bench(&a),
        None => cmd_optimize(&cli.optimize),
    };
    match result {
        Ok(()) => 0,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            eprintln!("ssc-opt: error: {}", ssc_opt::one_line(e.as_ref()));
            let verify_failed = matches!(
                e.downcast_ref::<ssc_opt::Error>(),
                Some(ssc_opt::Error::VerificationFailed(_))
            );
            if verify_failed {
                EXIT_VERIFY_FAILED
            } else {
                EXIT_BAD_INPUT
            }
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn cmd_optimize(a: &OptimizeArgs) -> anyhow::Result<()> {
    let input = a
        .input
        .as_deref()
        .ok_or_else(|| anyhow!("no input model given"))?;
    let output = a
        .output
        .as_deref()
        .ok_or_else(|| anyhow!("no output path given (-o)"))?;
    if same_file(input, output) && !a.overwrite {
        bail!(
            "{}: output is the input file; pass --overwrite to replace it",
            output.display()
        );
    }
    // Checked before reading, so a typo in -o fails at once rather than after the work.
    let out_dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !out_dir.is_dir() {
        bail!(
            "{}: refusing to write: directory `{}` does not exist",
            output.display(),
            out_dir.display()
        );
    }
    let start = Instant::now();
    let progress = Progress::new(a.quiet);
    progress.phase("reading");
    let loaded = ssc_opt::load(input)?;
    for w in &loaded.warnings {
        progress.warn(w);
    }
    let mut model = loaded.model;
    let shapes = parse_input_shapes(&a.input_shapes)?;
    let samples = if a.no_verify || a.no_optimize {
        0
    } else {
        a.verify
    };
    let opts = Options {
        cleanups: !a.no_optimize,
        rewrite: !a.no_rewrite,
        rewrite_options: ssc_opt::ssc_rewrite::RewriteOptions {
            cost: ssc_opt::cost_model(&a.cost_model)?,
            ..Default::default()
        },
        input_shapes: shapes,
        analyze_structure: a.report.is_some(),
        fix_types: a.fix_types,
        ..Options::default()
    };
    let verify = ssc_opt::VerifyOptions {
        samples,
        tolerance: a.verify_tol,
        ..Default::default()
    };
    let job = ssc_opt::optimize_verified(&mut model, &opts, &verify, &mut |p| progress.phase(p));
    let job = match job {
        Ok(job) => job,
        Err(e) => {
            progress.finish();
            return Err(in_file(input, e));
        }
    };
    for w in &job.optimize.warnings {
        progress.warn(&format!("{}: {w}", input.display()));
    }
    progress.phase("writing");
    let save = SaveOptions {
        external_data: if a.external_data {
            ExternalData::Always {
                threshold: ssc_opt::DEFAULT_EXTERNAL_THRESHOLD,
            }
        } else {
            ExternalData::Auto
        },
        overwrite: true,
    };
    let saved = ssc_opt::save(&model, output, &save)?;
    progress.finish();
    match a.report.as_deref() {
        Some("json") => outln!("{}", serde_json::to_string_pretty(&job)?)?,
        Some(_) => out!("{}", job.optimize.to_text())?,
        None => {}
    }
    if !a.quiet {
        let ext = saved
            .external
            .as_ref()
            .map(|(p, n)| format!(" + {} ({})", p.display(), ssc_opt::human_bytes(*n as u64)))
            .unwrap_or_default();
        let check = job
            .verification
            .as_ref()
            .map(|v| format!("; {}", v.summary()))
            .unwrap_or_default();
        eprintln!(
            "ssc-opt: {} -> {}{ext}: {}{check}; total {:.2} s",
            input.display(),
            output.display(),
            job.optimize.summary(),
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Parses `NAME:1,3,224,224` (a dim may be a symbolic name or `?`).
fn parse_input_shapes(specs: &[String]) -> anyhow::Result<Vec<(String, Vec<ssc_opt::ir::Dim>)>> {
    specs
        .iter()
        .map(|s| {
            let (name, dims) = s
                .rsplit_once(':')
                .with_context(|| format!("--input-shape `{s}`: expected NAME:D1,D2,..."))?;
            let dims = dims
                .split(',')
                .map(|d| {
                    let d = d.trim();
                    if d == "?" {
                        Ok(ssc_opt::ir::Dim::Unknown)
                    } else if let Ok(n) = d.parse::<usize>() {
                        Ok(ssc_opt::ir::Dim::Known(n))
                    } else if !d.is_empty() && !d.starts_with('-') {
                        Ok(ssc_opt::ir::Dim::Param(d.to_string()))
                    } else {
                        Err(anyhow!("--input-shape `{s}`: bad dimension `{d}`"))
                    }
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok((name.to_string(), dims))
        })
        .collect()
}

fn cmd_inspect(a: &InspectArgs) -> anyhow::Result<()> {
    let loaded = ssc_opt::load(&a.input)?;
    let shapes = parse_input_shapes(&a.input_shapes)?;
    let mut model = loaded.model;
    // Inference fills in intermediate shapes so every layer's MACs can be counted.
    let inferred =
        ssc_opt::infer_shapes(&mut model, &shapes).map_err(|e| in_file(&a.input, e.into()))?;
    print_warnings(&a.input, &loaded.warnings, &inferred.warnings, a.quiet);
    let info = ssc_opt::inspect(&model);
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&info)?)?;
    } else {
        out!("{}", info.to_text())?;
    }
    Ok(())
}

/// A file name for an output: ONNX names may hold `/` or `:`, which a path cannot.
fn output_file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.npy")
}

fn cmd_run(a: &RunArgs) -> anyhow::Result<()> {
    let loaded = ssc_opt::load(&a.model)?;
    let model = loaded.model;
    print_warnings(
        &a.model,
        &loaded.warnings,
        &ssc_opt::type_warnings(&model),
        a.quiet,
    );
    let shapes = parse_input_shapes(&a.input_shapes)?;
    if let Some(dir) = &a.output_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--output-dir {}: cannot create it", dir.display()))?;
    }
    let inputs = if a.inputs.is_empty() {
        ssc_opt::random_inputs(&model, &shapes, a.seed)?
    } else {
        let feeds = a
            .inputs
            .iter()
            .map(|spec| {
                let (name, src) = spec.split_once('=').with_context(|| {
                    format!("--input `{spec}`: expected NAME=FILE.npy or NAME=random")
                })?;
                let feed = if src == "random" {
                    ssc_opt::Feed::Random
                } else {
                    ssc_opt::Feed::File(PathBuf::from(src))
                };
                Ok((name.to_string(), feed))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        ssc_opt::prepare_inputs(&model, &feeds, &shapes, a.seed)?
    };
    let start = Instant::now();
    let engine = match a.engine {
        EngineArg::Auto => ssc_opt::Engine::Auto,
        EngineArg::Jit => ssc_opt::Engine::Jit,
        EngineArg::Reference => ssc_opt::Engine::Reference,
    };
    let (outputs, info) = ssc_opt::run_with(&model, &inputs, engine, a.threads)?;
    let elapsed = start.elapsed();
    for (name, t) in &outputs {
        let stats = t
            .to_f64_vec()
            .filter(|v| !v.is_empty())
            .map(|v| {
                let min = v.iter().copied().fold(f64::INFINITY, f64::min);
                let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                format!(" min {min:.6} max {max:.6} mean {mean:.6}")
            })
            .unwrap_or_default();
        outln!("{name}: {}{:?}{stats}", t.dtype, t.dims)?;
        if let Some(dir) = &a.output_dir {
            let path = dir.join(output_file_name(name));
            let bytes = ssc_opt::encode_npy(t, &path.display().to_string())?;
            ssc_opt::write_atomic(&path, &bytes)?;
        }
    }
    if !a.quiet {
        let engine = match info.engine {
            ssc_opt::Engine::Jit => "the JIT",
            _ => "the reference executor",
        };
        eprintln!(
            "ssc-opt: ran {} ({} inputs, {} outputs) with {engine} in {:.3} s (compile included)",
            a.model.display(),
            inputs.len(),
            outputs.len(),
            elapsed.as_secs_f64()
        );
        if let Some(why) = &info.reason {
            eprintln!("ssc-opt: the JIT does not cover this model: {why}");
        }
        if !info.fallback.is_empty() {
            let names: Vec<String> = info
                .fallback
                .iter()
                .map(|s| format!("{} ({})", s.node, s.op_type))
                .collect();
            eprintln!(
                "ssc-opt: {} node(s) ran through reference kernels: {}",
                names.len(),
                names.join(", ")
            );
        }
    }
    Ok(())
}

fn cmd_bench(a: &BenchArgs) -> anyhow::Result<()> {
    let loaded = ssc_opt::load(&a.model)?;
    print_warnings(
        &a.model,
        &loaded.warnings,
        &ssc_opt::type_warnings(&loaded.model),
        a.quiet,
    );
    let opts = ssc_opt::BenchOptions {
        threads: a.threads,
        iters: a.iters,
        warmup: a.warmup,
        input_shapes: parse_input_shapes(&a.input_shapes)?,
        seed: a.seed,
        dense_only: a.dense_only,
    };
    let report = ssc_opt::bench(&loaded.model, &opts)?;
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        out!("{}", report.to_text())?;
        if a.kernels {
            for k in &report.kernels {
                outln!("  {:8.3} ms  {}: {}", k.median_ms, k.node, k.kernel)?;
            }
        }
    }
    Ok(())
}
