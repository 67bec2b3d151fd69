//! `sleeve catalogue build | add | remove | stats`: flags of [`sleeve_catalogue::commands`].

use std::path::PathBuf;

use clap::{Args, Subcommand};
use sleeve_catalogue::commands::{self, AddOptions, BuildOptions, EnrolInput, RemoveOptions};

/// Catalogue subcommands.
#[derive(Subcommand, Debug)]
pub enum CatalogueCmd {
    /// Build a new catalogue from a CSV file or a folder of covers.
    Build(BuildArgs),
    /// Add covers to an existing catalogue (covers already in it are skipped).
    Add(AddArgs),
    /// Remove entries by id.
    Remove(RemoveArgs),
    /// Describe a catalogue (verifies it), as JSON.
    Stats(StatsArgs),
}

/// Where covers come from and how they are enrolled.
#[derive(Args, Debug, Clone)]
pub struct EnrolArgs {
    /// `csv FILE` (columns: image path, artist, title, bin or genre, any extra columns kept
    /// verbatim) or `folder DIR` (every image; title = file name, bin = sub-folder).
    #[arg(long, num_args = 2, value_names = ["KIND", "PATH"], required = true)]
    pub from: Vec<String>,
    /// Descriptors per cover: the cover plus perspective-jittered views (1..=64).
    #[arg(long, default_value_t = 1)]
    pub views: u32,
    /// pHash distance at or below which a cover counts as already enrolled; 0 = exact
    /// copies only (same file bytes or same pHash).
    #[arg(long, default_value_t = sleeve_data::dedupe::DEFAULT_NEAR_THRESHOLD)]
    pub near_threshold: u32,
    /// Enrol the usable rows even when others are bad (missing, URL, undecodable): each
    /// is still reported. Without it a bad row is an error and nothing is written.
    #[arg(long)]
    pub skip_bad: bool,
}

/// `sleeve catalogue build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub enrol: EnrolArgs,
    /// The catalogue file to write (the kiosk reads `<bundle>/catalogue.slvc`).
    #[arg(long, default_value = "models/default/catalogue.slvc")]
    pub out: PathBuf,
    /// Replace an existing catalogue file.
    #[arg(long)]
    pub force: bool,
}

/// `sleeve catalogue add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// The catalogue file.
    pub catalogue: PathBuf,
    #[command(flatten)]
    pub enrol: EnrolArgs,
}

/// `sleeve catalogue remove`.
#[derive(Args, Debug)]
pub struct RemoveArgs {
    /// The catalogue file.
    pub catalogue: PathBuf,
    /// Entry ids to remove (see `stats --entries`).
    #[arg(long = "id", required = true, num_args = 1..)]
    pub ids: Vec<u64>,
}

/// `sleeve catalogue stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// The catalogue file.
    pub catalogue: PathBuf,
    /// List every entry (id, artist, title, bin, source, views, extra columns).
    #[arg(long)]
    pub entries: bool,
}

impl From<EnrolArgs> for EnrolInput {
    fn from(a: EnrolArgs) -> Self {
        Self {
            from: a.from,
            views: a.views,
            near_threshold: a.near_threshold,
            skip_bad: a.skip_bad,
        }
    }
}

/// Runs a catalogue subcommand and prints its JSON summary.
pub fn run(cmd: CatalogueCmd) -> anyhow::Result<()> {
    let v = match cmd {
        CatalogueCmd::Build(a) => commands::build(&BuildOptions {
            enrol: a.enrol.into(),
            out: a.out,
            force: a.force,
        })?,
        CatalogueCmd::Add(a) => commands::add(&AddOptions {
            catalogue: a.catalogue,
            enrol: a.enrol.into(),
        })?,
        CatalogueCmd::Remove(a) => commands::remove(&RemoveOptions {
            catalogue: a.catalogue,
            ids: a.ids,
        })?,
        CatalogueCmd::Stats(a) => commands::stats(&a.catalogue, a.entries)?,
    };
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
