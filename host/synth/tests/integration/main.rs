//! Integration tests of `sleeve-synth`, one test binary (each binary links
//! the whole dependency tree, so one per crate keeps the test build short).

mod covers_sheet;
mod pa;
mod scenes;
