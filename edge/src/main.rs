//! `sleeve-edge`: the offline kiosk binary. See `sleeve-edge --help`.

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = sleeve_edge::cli::Cli::parse();
    if let Err(e) = sleeve_edge::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
