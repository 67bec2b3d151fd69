//! Synthetic data for Sleeve: Parental Advisory composites with COCO boxes ([`pa`]), kiosk
//! camera frames with sleeve corners ([`scenes`]), procedural genre-styled covers
//! ([`covers`]) and contact sheets to look at them ([`sheet`]).
//!
//! Everything is deterministic for a seed: each output item gets its own ChaCha stream
//! ([`rng::item_rng`]), so results do not depend on thread count or order.

pub mod badge;
pub mod canvas;
pub mod coco;
pub mod covers;
pub mod designs;
pub mod error;
pub mod generate;
pub mod io;
pub mod lookalike;
pub mod noise;
pub mod pa;
pub mod place;
pub mod rng;
pub mod scenes;
pub mod sheet;
pub mod stats;
pub mod text;
pub mod warp;
pub mod words;

pub use error::SynthError;
