//! `sleeve-edge`: the offline kiosk binary. See `sleeve-edge --help`.

use clap::Parser;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

fn main() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        // The last warning/error, for the HTTP API's status (whatever RUST_LOG says).
        .with(sleeve_edge::serve::LastErrorLayer)
        .init();
    let cli = sleeve_edge::cli::Cli::parse();
    if let Err(e) = sleeve_edge::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
