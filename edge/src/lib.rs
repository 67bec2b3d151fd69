//! `sleeve-edge`: the offline kiosk runtime.
//!
//! Data path, top to bottom:
//!
//! 1. a [`source::FrameSource`] yields RGB frames (camera, image files, a numbered sequence
//!    or synthetic scenes), wrapped in [`source::Retrying`] so a source that dies is retried
//!    with backoff instead of crashing the kiosk;
//! 2. [`finder`] locates the square record sleeve and rectifies it to a square image;
//! 3. [`engine`] runs the bundle's classifier and Parental Advisory detector (tract plans
//!    built once from a verified [`bundle`]), preprocessing only through
//!    `sleeve_shared::preprocess`, and fuses the two;
//! 4. [`stabilize`] turns per-frame results into a stable decision (EMA + hysteresis, with an
//!    "uncertain" abstain state);
//! 5. [`display`] draws the kiosk screen (PNG snapshots, Linux framebuffer, simulator) and
//!    [`output`] writes JSON lines for store systems.
//!
//! With a store catalogue (`catalogue.slvc`), [`catalogue`] recognises the store's own
//! records from the rectified sleeve and the kiosk shows the record instead of the genre.
//!
//! [`serve`] (local HTTP API, server-sent events, staff page) and [`mqtt`] pass decisions
//! and health on to store systems without ever holding up the frame loop.
//!
//! [`pipeline`] ties 2–4 together with per-stage timings; [`bench`], [`doctor`] and
//! [`cli`] implement the `sleeve-edge` subcommands.
#![warn(missing_docs)]

pub mod bench;
pub mod bundle;
pub mod catalogue;
pub mod classify;
pub mod cli;
pub mod display;
pub mod doctor;
pub mod engine;
pub mod error;
pub mod finder;
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod fixtures;
pub mod integration;
pub mod joint;
pub mod kiosk;
#[cfg(feature = "mqtt")]
pub mod mqtt;
pub mod notify;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod resize;
pub mod reuse;
pub mod serve;
pub mod source;
pub mod stabilize;
pub mod views;

pub use bundle::Bundle;
pub use engine::Engine;
pub use error::EdgeError;
pub use pipeline::{FrameReport, Pipeline, PipelineConfig};
