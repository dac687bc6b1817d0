//! From a file to pixels: safe decoding of JPEG, PNG, TIFF and DICOM (`imaging`, `dicom`), the
//! windowing rule for images deeper than 8 bits (`window`), and the model's input (`model_input`):
//! one preprocessing path for training and inference.

pub mod dicom;
pub mod imaging;
pub mod limits;
pub mod model_input;
pub mod window;
