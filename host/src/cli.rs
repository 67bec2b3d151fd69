//! The `sleeve` command line: one module per command group, each holding the clap flags and
//! turning them into the option structs of the library crates.

pub mod catalogue;
pub mod data;
pub mod detector;
pub mod export;
pub mod nn;
pub mod pa_boxes;
pub mod synth;
