//! Sleeve data sets: importers, downloader, dedupe, split, stats.
//!
//! # Using a dataset from other crates
//!
//! ```no_run
//! use sleeve_data::{Dataset, Split, load_any};
//! # fn main() -> Result<(), sleeve_data::DataError> {
//! // A dataset directory written by `sleeve dataset import` (+ `split`) …
//! let ds = Dataset::open("/tmp/covers5ds")?;
//! let train = ds.split_records(Split::Train);
//! // … or any folder-per-genre tree (`DIR/<genre>/*.jpg`): splits are None there.
//! let mut all = load_any("/data/covers5")?;
//! let genres = sleeve_data::genres_of(&all);
//! // Deterministic stratified split in memory (groups identical files by SHA-256 / id).
//! let cfg = sleeve_data::split::SplitConfig { val: 0.1, test: 0.1, seed: 1 };
//! sleeve_data::split::split_records(&mut all, &cfg)?;
//! # let _ = (train, genres); Ok(()) }
//! ```
//!
//! A [`Record`] has `id`, `sha256` (None for plain folders), absolute `path`, canonical
//! `genre` and `split` (`Option<Split>`). On-disk layout and commands: `docs/datasets.md`.
pub mod dataset;
pub mod dedupe;
pub mod error;
pub mod fetch;
pub mod folder;
pub mod import;
pub mod manifest;
pub mod pipeline;
pub mod select;
pub mod split;
pub mod stats;
pub mod store;

pub use dataset::{Dataset, Record, genres_of, load_any};
pub use error::DataError;
pub use manifest::{ManifestRow, Split};
