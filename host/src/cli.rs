//! The `sleeve` command line: one module per command group, each holding the clap flags and
//! turning them into the option structs of the library crates.

pub mod synth;
