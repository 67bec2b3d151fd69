//! The `sleeve synth` commands without building the whole `sleeve` binary (which pulls in
//! burn): `cargo run -p sleeve-synth --release --example synth -- pa --out /tmp/pa`.

use clap::Parser;

/// Synthetic data generators (same subcommands as `sleeve synth`).
#[derive(Parser)]
#[command(name = "synth")]
struct Cli {
    #[command(subcommand)]
    cmd: sleeve_synth::cli::SynthCmd,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match sleeve_synth::cli::run(cli.cmd) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
