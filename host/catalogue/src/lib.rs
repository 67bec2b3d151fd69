//! The store's own catalogue, built on the host: one int8 cover descriptor (plus optional
//! augmented views) per record, computed by `sleeve_shared::catalogue` exactly as the kiosk
//! computes it from a rectified sleeve.
//!
//! * [`input`]: CSV rows or a folder of covers, bad rows reported by line;
//! * [`enrol`]: decoding, duplicate checks (SHA-256 and pHash, as the dataset dedupe),
//!   descriptors;
//! * [`views`]: perspective-jittered extra views;
//! * [`commands`]: `sleeve catalogue build | add | remove | stats` as library calls.
//!
//! File format and measurements: `docs/catalogue.md`.

pub mod commands;
pub mod enrol;
pub mod error;
pub mod input;
pub mod views;

pub use enrol::{EnrolOptions, EnrolReport, enrol};
pub use error::CatalogueBuildError;
pub use input::{Input, InputRow, read_csv, read_folder};
