//! The `ssc-opt` binary: all of it is [`ssc_opt_cli::run`], which the Python package's
//! `ssc-opt` command calls too.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(ssc_opt_cli::run(std::env::args_os()))
}
