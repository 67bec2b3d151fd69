//! Standalone entry to the detector commands (same arguments as `sleeve train detector`,
//! `sleeve eval detector`, `sleeve eval fusion`) without building the whole CLI:
//! `cargo run -p sleeve-detector --example detector -- train --covers DIR`.
use clap::{Parser, Subcommand};
use sleeve_detector::cli;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train the detector.
    Train(cli::TrainArgs),
    /// Evaluate a detector checkpoint.
    Eval(cli::EvalArgs),
    /// Fit and measure PA-aware genre fusion.
    Fusion(cli::FusionArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Train(a) => cli::train(a),
        Cmd::Eval(a) => cli::eval(a),
        Cmd::Fusion(a) => cli::fusion(a),
    }
}
