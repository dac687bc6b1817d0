//! What a decoder accepts and how it fails: the guards against oversized and hostile files.

/// Largest width or height accepted (a header claiming more is refused before decoding).
pub const MAX_SIDE: u32 = 16_384;
/// Largest decoder allocation (bytes): a guard against decompression bombs.
pub const MAX_ALLOC: u64 = 512 * 1024 * 1024;
/// Largest file read (bytes).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Why one file could not be used. Always names the cause; the caller knows the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}
