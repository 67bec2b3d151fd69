//! Integration tests of `sleeve-catalogue` (one test binary per crate).

mod build;
