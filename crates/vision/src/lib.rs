//! Pixel geometry for osteoai's audit: is this file a copy of that one?
//!
//! A grey image ([`gray`]), keypoints with binary descriptors ([`orb`]), plausible affine maps
//! ([`affine`]), descriptor matching ([`matching`]), the pixel check of an aligned pair ([`align`]) and the verdict that puts them
//! together ([`verify`]). The loops here run once per image (keypoints) or once per candidate
//! pair (matching, RANSAC, alignment) — thousands of times in one audit — so this crate is
//! compiled optimised in every profile (`Cargo.toml` at the root), while the domain crate above
//! it keeps quick incremental builds. No dependencies, no I/O, no caches: `osteoai-core`
//! decodes, caches and reports.

pub mod affine;
pub mod align;
pub mod gray;
pub mod matching;
pub mod orb;
pub mod verify;
