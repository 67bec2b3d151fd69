//! The contract both sides of Sleeve agree on, byte for byte.
//!
//! The host (`sleeve`) trains and exports models; the edge (`sleeve-edge`) runs them on a
//! kiosk. Everything that must be identical on both sides lives here:
//!
//! * [`labels`]: genre label sets and genre-name normalisation;
//! * [`preprocess`]: RGB image → model tensor (crop, resample, normalise, layout);
//! * [`manifest`]: the model-bundle manifest (`manifest.json`);
//! * [`detect`]: SSD anchors, box coding, IoU and non-maximum suppression;
//! * [`results`]: what a classification or detection produces;
//! * [`catalogue`]: the cover descriptor, int8 search and catalogue file (store records);
//! * [`rng`]: SplitMix64, the seeded generator and hash for reproducible draws;
//! * [`duration`]: the duration grammar of command-line flags.
//!
//! The crate is `no_std` + `alloc` unless the `std` feature (default) is on; `std` adds
//! [`fsutil`] (atomic writes, file hashing); `image` adds `imageio` (the decoding front door
//! with Pi-sized limits); `stop` adds the Ctrl-C stop token; `canvas` the
//! `embedded-graphics` draw targets; `progress` the progress-bar
//! style of the host commands.
#![cfg_attr(not(feature = "std"), no_std)]
#![warn(missing_docs)]

extern crate alloc;

pub mod boxes;
pub mod calibration;
#[cfg(feature = "canvas")]
pub mod canvas;
pub mod catalogue;
pub mod detect;
pub mod duration;
#[cfg(feature = "std")]
pub mod fsutil;
pub mod fusion;
#[cfg(feature = "image")]
pub mod imageio;
pub mod labels;
pub mod manifest;
pub mod preprocess;
#[cfg(feature = "progress")]
pub mod progress;
pub mod results;
pub mod rng;
#[cfg(feature = "stop")]
pub mod stop;

pub use labels::LabelSet;
pub use manifest::BundleManifest;
pub use preprocess::{PreprocessConfig, RgbView};
pub use results::{Classification, GenreScore, PaBox};
