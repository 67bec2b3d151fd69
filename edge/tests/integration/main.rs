//! Integration tests of `sleeve-edge`, one test binary (each binary links
//! the whole dependency tree, so one per crate keeps the test build short).

mod bundle_verify;
mod catalogue;
mod display_png;
mod finder;
mod hostile;
mod joint;
mod kiosk;
mod models;
#[cfg(feature = "mqtt")]
mod mqtt;
mod serve;
mod sources;
mod watchdog;
