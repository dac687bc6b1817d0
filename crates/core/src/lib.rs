//! osteoai-core: the UI-free domain of osteoai, a terminal reviewer of X-ray radiographs with a
//! CNN written in burn and a LightGBM head. No terminal, no command line: the binary (`osteoai`,
//! the repository root) holds the dashboard and the headless commands over this crate, and the
//! CPU kernels are their own crate (`osteoai-kernels`) under it.
//!
//! Layers, lowest first (a module uses only modules of its own layer or below; checked by
//! `tests/layers.rs` at the repository root):
//!
//! | layer | modules |
//! |---|---|
//! | helpers | `error`, `text`, `timefmt`, `cache`, `labels`, `metrics` |
//! | files | `decode` (imaging, DICOM, windowing, model input), `scan`, `shard`, `fixtures` |
//! | models | `device`, `model` (backbones, heads, bundles), `engine`, `features` |
//! | learning | `train`, `fit`, `finetune`, `explain` |
//! | review state | `journal`, `marks`, `scores`, `audit` |
//!
//! Not for clinical use.

pub mod audit;
pub mod cache;
pub mod decode;
pub mod device;
pub mod engine;
pub mod error;
pub mod explain;
pub mod features;
pub mod finetune;
pub mod fit;
pub mod fixtures;
pub mod font;
pub mod journal;
pub mod labels;
pub mod marks;
pub mod metrics;
pub mod model;
pub mod scan;
pub mod scores;
pub mod shard;
pub mod text;
pub mod timefmt;
pub mod train;
