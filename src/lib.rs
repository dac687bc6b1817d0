//! osteoai: review X-ray radiographs with a CNN written in burn and a LightGBM head.
//!
//! The UI-free core: scanning labelled folders, decoding and preprocessing, the backbone and
//! head, the inference engine, metrics, training, caches and the demo fixtures. The binary
//! (`src/main.rs`) holds the command line and the dashboard over this library.
//!
//! Not for clinical use.

pub mod audit;
pub mod cache;
pub mod device;
pub mod dicom;
pub mod engine;
pub mod error;
pub mod explain;
pub mod features;
pub mod finetune;
pub mod fit;
pub mod fixtures;
pub mod imaging;
pub mod journal;
pub mod labels;
pub mod marks;
pub mod metrics;
pub mod model;
pub mod model_input;
pub mod scan;
pub mod scores;
pub mod shard;
pub mod text;
pub mod timefmt;
pub mod train;
pub mod window;
