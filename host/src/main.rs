//! `sleeve`: the host side of Sleeve. Builds the models the kiosk runs.
//!
//! ```text
//! sleeve dataset  import | fetch | split | stats     data sets of album covers
//! sleeve synth    pa | scenes | covers | sheet       synthetic training and test images
//! sleeve weights  ...                                pretrained ImageNet weights
//! sleeve train    classifier | detector              training with burn
//! sleeve eval     classifier | detector | fusion     metrics and plots
//! sleeve pa-boxes propose | sheets | zoom | apply | check   boxing real PA labels
//! sleeve baseline knn                                the seeds' KNN baselines
//! sleeve export   ...                                ONNX, int8, model bundles
//! sleeve catalogue build | add | remove | stats      the store's own records (kiosk recognition)
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

mod cli;

/// Tell a record's genre from its cover: host tools (data, training, evaluation, export).
#[derive(Parser)]
#[command(name = "sleeve", version, about, propagate_version = true)]
struct Cli {
    /// More log output (-v: debug, -vv: trace). `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import, download, deduplicate, split and describe album-cover data sets.
    #[command(subcommand)]
    Dataset(cli::data::DatasetCmd),
    /// Generate synthetic Parental Advisory composites, camera scenes and demo covers.
    #[command(subcommand)]
    Synth(cli::synth::SynthCmd),
    /// Import and check pretrained ImageNet weights (TFLite, safetensors).
    #[command(subcommand)]
    Weights(WeightsCmd),
    /// Train the genre classifier or the Parental Advisory detector.
    #[command(subcommand)]
    Train(TrainCmd),
    /// Evaluate a trained model: metrics as JSON plus PNG plots.
    #[command(subcommand)]
    Eval(EvalCmd),
    /// Box real printed Parental Advisory labels by review: proposals, sheets, apply.
    #[command(subcommand, name = "pa-boxes")]
    PaBoxes(cli::pa_boxes::PaBoxesCmd),
    /// Baselines from the seed projects (KNN on embeddings or colour histograms).
    #[command(subcommand)]
    Baseline(BaselineCmd),
    /// Export trained models to ONNX, quantize to int8 and write model bundles.
    #[command(subcommand)]
    Export(cli::export::ExportCmd),
    /// Build and edit the store's catalogue of its own records (recognised on the kiosk).
    #[command(subcommand)]
    Catalogue(cli::catalogue::CatalogueCmd),
}

#[derive(Subcommand)]
enum WeightsCmd {
    /// Import ImageNet weights into the burn model and classify images with it.
    Check(cli::nn::WeightsCheckArgs),
}

#[derive(Subcommand)]
enum TrainCmd {
    /// Train the MobileNetV2-style genre classifier.
    Classifier(cli::nn::TrainArgs),
    /// Train the SSD-Lite Parental Advisory detector.
    Detector(cli::detector::TrainArgs),
}

#[derive(Subcommand)]
enum EvalCmd {
    /// Accuracy, macro-F1, ROC AUC, confusion matrix and plots for a classifier.
    Classifier(cli::nn::EvalArgs),
    /// COCO-style AP and precision-recall for the detector.
    Detector(cli::detector::EvalArgs),
    /// Fit and measure PA-aware genre fusion.
    Fusion(cli::detector::FusionArgs),
}

#[derive(Subcommand)]
enum BaselineCmd {
    /// K-nearest-neighbours on embeddings or colour histograms.
    Knn(cli::nn::KnnArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Dataset(cmd) => cli::data::run(cmd),
        Command::Synth(cmd) => cli::synth::run(cmd),
        Command::Weights(WeightsCmd::Check(a)) => cli::nn::weights_check(a),
        Command::Train(TrainCmd::Classifier(a)) => cli::nn::train(a),
        Command::Train(TrainCmd::Detector(a)) => cli::detector::train(a),
        Command::Eval(EvalCmd::Classifier(a)) => cli::nn::eval(a),
        Command::Eval(EvalCmd::Detector(a)) => cli::detector::eval(a),
        Command::Eval(EvalCmd::Fusion(a)) => cli::detector::fusion(a),
        Command::PaBoxes(cmd) => cli::pa_boxes::run(cmd),
        Command::Baseline(BaselineCmd::Knn(a)) => cli::nn::knn(a),
        Command::Export(cmd) => cli::export::run(cmd),
        Command::Catalogue(cmd) => cli::catalogue::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
