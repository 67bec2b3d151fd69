//! The `sleeve dataset` commands without the rest of the host binary (no burn build):
//! `cargo run --release -p sleeve-data --example dataset -- import --from folder DIR --out OUT`.
use clap::Parser;

/// Stand-alone `sleeve dataset`.
#[derive(Parser)]
#[command(name = "sleeve-dataset")]
struct Cli {
    #[command(subcommand)]
    cmd: sleeve_data::cli::DatasetCmd,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging();
    match sleeve_data::cli::run(cli.cmd) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Warnings and info go to stderr, like the `sleeve` binary.
fn init_logging() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
