//! Models: the burn backbone, the LightGBM head, the manifest and the bundle that ties them.

pub mod arch;
mod bn_train;
pub mod bundle;
mod cpu_op;
mod dwconv;
pub mod effnet;
pub mod head;
pub mod import;
pub mod lgbm_log;
pub mod linear;
pub mod manifest;
pub mod native;
mod pwconv;
mod relu6;

pub use bundle::Bundle;
pub use manifest::Manifest;
