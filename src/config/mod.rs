//! The hospital JSON config: parsing, validation, and merging into per-node settings.

mod settings;

pub use settings::*;
