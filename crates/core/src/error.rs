//! The library's error: a kind a caller can match on, and a message as clear as a person needs.
//! Per-file results (a score or a reason) stay plain text in their rows; this type is for the
//! calls that fail as a whole.

/// What went wrong, by kind.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Reading or writing files and folders (missing, unreadable, read-only, full).
    #[error("{0}")]
    Io(String),
    /// An image that cannot be decoded.
    #[error("{0}")]
    Decode(String),
    /// A model bundle that is missing, damaged or inconsistent (manifest, head, weights).
    #[error("{0}")]
    Model(String),
    /// The compute device (GPU adapter, backend) could not be used.
    #[error("{0}")]
    Device(String),
    /// A folder laid out other than a command needs (no `val/`, one class, no labels).
    #[error("{0}")]
    Layout(String),
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// Anything else, said in words.
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<String> for Error {
    fn from(s: String) -> Error {
        Error::Other(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Error {
        Error::Other(s.to_string())
    }
}

impl From<crate::decode::imaging::DecodeError> for Error {
    fn from(e: crate::decode::imaging::DecodeError) -> Error {
        Error::Decode(e.0)
    }
}

/// The binary's commands report in words.
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

/// Adds the kind to a message-building result: `something().kind(Error::Model)?`.
pub trait Kind<T> {
    fn kind(self, k: fn(String) -> Error) -> Result<T>;
}

impl<T> Kind<T> for std::result::Result<T, String> {
    fn kind(self, k: fn(String) -> Error) -> Result<T> {
        self.map_err(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_kind() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        // A model folder that is not there.
        let e = crate::model::Bundle::load(&r.join("no-model")).err();
        assert!(matches!(e, Some(Error::Model(_))), "{e:?}");
        // A folder with one class only.
        std::fs::create_dir_all(r.join("fracture")).unwrap();
        std::fs::write(r.join("fracture/a.jpg"), b"A").unwrap();
        let files = vec![r.join("fracture/a.jpg")];
        let e = crate::fit::discover_classes(r, &files, None).unwrap_err();
        assert!(matches!(e, Error::Layout(_)), "{e:?}");
        // A file that is not there.
        let mut j = crate::journal::Journal::open(r).unwrap();
        let c = crate::labels::ClassSpec::fracture_default();
        let e = j
            .relabel(r, &c, &r.join("fracture/gone.jpg"), 1)
            .unwrap_err();
        assert!(matches!(e, Error::Io(_)), "{e:?}");
        // Bytes that are not an image.
        let e: Error = crate::decode::imaging::decode_bytes(b"not an image")
            .unwrap_err()
            .into();
        assert!(matches!(e, Error::Decode(_)), "{e:?}");
        // The words stay those a person reads.
        assert_eq!(
            String::from(Error::Layout("x needs val/".into())),
            "x needs val/"
        );
    }
}
