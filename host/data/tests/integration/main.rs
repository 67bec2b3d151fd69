//! Integration tests of `sleeve-data`, one test binary (each binary links
//! the whole dependency tree, so one per crate keeps the test build short).

mod common;
mod fetch;
mod folder_import;
mod fuzz;
mod hostile;
mod list_import;
mod split_stats;
