//! Recognising a store's own records: a cover descriptor both sides compute identically,
//! int8 nearest-neighbour search, and (with `std`) the catalogue file.
//!
//! See `docs/catalogue.md` for the design and measurements.

pub mod descriptor;
#[cfg(feature = "std")]
pub mod file;
pub mod index;

pub use descriptor::{
    CELL_DIM, DESCRIPTOR_DIM, DESCRIPTOR_VERSION, describe, describe_quantized, quantize,
};
#[cfg(feature = "std")]
pub use file::{CATALOGUE_FILE, Catalogue, CatalogueEntry, CatalogueError};
pub use index::{Hit, Index, Scored};
