//! Integration tests of `sleeve-weights`, one test binary (each binary links
//! the whole dependency tree, so one per crate keeps the test build short).

mod coral;
mod reference;
mod tflite;
mod torchvision;
