//! The `ssc-opt` command line: a thin layer over the `ssc-opt` library facade.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use ssc_opt::{ExternalData, Options, SaveOptions};

/// Exit code for bad input or usage (clap uses 2 for usage errors too).
const EXIT_BAD_INPUT: u8 = 2;

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
    /// Allow OUT to replace an existing file, even IN itself.
    #[arg(long)]
    overwrite: bool,
    /// Store weights in OUT.onnx.data (by default only when the model exceeds 2 GiB).
    #[arg(long)]
    external_data: bool,
    /// Fix a symbolic input shape, e.g. `input:1,3,224,224` (repeatable).
    #[arg(long = "input-shape", value_name = "NAME:DIMS")]
    input_shapes: Vec<String>,
    /// No progress or summary on stderr.
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
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .expect("static template"),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress { bar: Some(bar) }
    }
    fn phase(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(msg.to_string());
        }
    }
    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = cli.optimize.quiet;
    let result = match cli.command {
        Some(Command::Inspect(a)) => cmd_inspect(&a),
        None => cmd_optimize(&cli.optimize),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = quiet;
            eprintln!("ssc-opt: error: {}", one_line(&e));
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// The error chain on one line, outermost context first.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn cmd_optimize(a: &OptimizeArgs) -> anyhow::Result<()> {
    let input = a.input.as_deref().ok_or_else(|| anyhow!("no input model given"))?;
    let output = a.output.as_deref().ok_or_else(|| anyhow!("no output path given (-o)"))?;
    if same_file(input, output) && !a.overwrite {
        bail!(
            "{}: output is the input file; pass --overwrite to replace it",
            output.display()
        );
    }
    let start = Instant::now();
    let progress = Progress::new(a.quiet);
    progress.phase("reading");
    let loaded = ssc_opt::load(input)?;
    for w in &loaded.warnings {
        progress.finish();
        if !a.quiet {
            eprintln!("ssc-opt: warning: {w}");
        }
    }
    let mut model = loaded.model;
    let shapes = parse_input_shapes(&a.input_shapes)?;
    progress.phase("optimising");
    let opts = Options {
        cleanups: !a.no_optimize,
    };
    let _ = &shapes;
    let report = ssc_opt::optimize(&mut model, &opts)?;
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
    if !a.quiet {
        let ext = saved
            .external
            .as_ref()
            .map(|(p, n)| format!(" + {} ({})", p.display(), ssc_opt::human_bytes(*n as u64)))
            .unwrap_or_default();
        eprintln!(
            "ssc-opt: {} -> {}{ext}: {}; total {:.2} s",
            input.display(),
            output.display(),
            report.summary(),
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
    for w in &loaded.warnings {
        eprintln!("ssc-opt: warning: {w}");
    }
    let _ = parse_input_shapes(&a.input_shapes)?;
    let info = ssc_opt::inspect(&loaded.model);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        print!("{}", info.to_text());
    }
    Ok(())
}
