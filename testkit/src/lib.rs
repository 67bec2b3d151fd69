//! Test support shared by Sleeve's test suites; a dev-dependency only, never linked into a
//! binary.
//!
//! * [`fuzz`]: property-test configuration (`PROPTEST_CASES`) and hostile-input generators
//!   for the parsers a user can feed.
#![warn(missing_docs)]

pub mod fuzz;
