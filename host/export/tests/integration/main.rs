//! Integration tests of `sleeve-export`, one test binary (each binary links
//! the whole dependency tree, so one per crate keeps the test build short).

mod bundle;
mod export;
mod joint;
mod trained;
