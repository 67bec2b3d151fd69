//! Integration tests of `sleeve-shared`, one test binary: property-based fuzzing of the
//! parsers a user can feed (bundle manifests, the image decoding front door).

mod fuzz;
