//! What a DICOM file says about itself, for the metadata panel and `inspect`: technical
//! attributes only. Patient-identifying attributes (`PHI_TAGS`) are never part of `Meta`; they
//! are read by `phi()` alone, which only `--show-phi` calls.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemDicomObject;

/// Transfer syntaxes: UID, name, whether osteoai decodes its pixel data.
pub const TRANSFER_SYNTAXES: &[(&str, &str, bool)] = &[
    ("1.2.840.10008.1.2", "Implicit VR Little Endian", true),
    ("1.2.840.10008.1.2.1", "Explicit VR Little Endian", true),
    (
        "1.2.840.10008.1.2.1.99",
        "Deflated Explicit VR Little Endian",
        true,
    ),
    (
        "1.2.840.10008.1.2.2",
        "Explicit VR Big Endian (retired)",
        true,
    ),
    ("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", true),
    (
        "1.2.840.10008.1.2.4.51",
        "JPEG Extended (Process 2 & 4)",
        true,
    ),
    ("1.2.840.10008.1.2.4.57", "JPEG Lossless (Process 14)", true),
    (
        "1.2.840.10008.1.2.4.70",
        "JPEG Lossless (Process 14, SV1)",
        true,
    ),
    ("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", true),
    ("1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless", true),
    ("1.2.840.10008.1.2.4.90", "JPEG 2000 (Lossless Only)", true),
    ("1.2.840.10008.1.2.4.91", "JPEG 2000", true),
    ("1.2.840.10008.1.2.4.201", "HTJ2K (Lossless Only)", true),
    (
        "1.2.840.10008.1.2.4.202",
        "HTJ2K with RPCL (Lossless Only)",
        true,
    ),
    ("1.2.840.10008.1.2.4.203", "HTJ2K", true),
    ("1.2.840.10008.1.2.5", "RLE Lossless", true),
    ("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile", false),
    ("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264", false),
    ("1.2.840.10008.1.2.4.110", "JPEG XL Lossless", false),
    ("1.2.840.10008.1.2.4.112", "JPEG XL", false),
];

/// The name of a transfer syntax UID, when known.
pub fn transfer_syntax_name(uid: &str) -> Option<&'static str> {
    let uid = uid.trim_end_matches(['\0', ' ']);
    TRANSFER_SYNTAXES
        .iter()
        .find(|(u, _, _)| *u == uid)
        .map(|(_, n, _)| *n)
}

/// Patient-identifying attributes: never shown, exported or logged without `--show-phi`.
pub const PHI_TAGS: &[(Tag, &str)] = &[
    (tags::PATIENT_NAME, "Patient name"),
    (tags::PATIENT_ID, "Patient ID"),
    (tags::PATIENT_BIRTH_DATE, "Birth date"),
    (tags::PATIENT_BIRTH_TIME, "Birth time"),
    (tags::PATIENT_ADDRESS, "Patient address"),
    (tags::PATIENT_TELEPHONE_NUMBERS, "Patient telephone"),
    (Tag(0x0010, 0x1000), "Other patient IDs"),
    (tags::OTHER_PATIENT_NAMES, "Other patient names"),
    (tags::PATIENT_AGE, "Patient age"),
    (tags::ACCESSION_NUMBER, "Accession number"),
    (tags::INSTITUTION_NAME, "Institution"),
    (tags::INSTITUTION_ADDRESS, "Institution address"),
    (tags::REFERRING_PHYSICIAN_NAME, "Referring physician"),
    (tags::PERFORMING_PHYSICIAN_NAME, "Performing physician"),
    (tags::OPERATORS_NAME, "Operator"),
    (tags::STATION_NAME, "Station"),
    (tags::STUDY_ID, "Study ID"),
    (tags::STUDY_DATE, "Study date"),
    (tags::SERIES_DATE, "Series date"),
    (tags::ACQUISITION_DATE, "Acquisition date"),
    (tags::CONTENT_DATE, "Content date"),
    (tags::STUDY_TIME, "Study time"),
];

/// Technical attributes of one file (no patient-identifying attribute).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Meta {
    pub transfer_syntax: String,
    pub transfer_syntax_supported: bool,
    pub sop_class: Option<String>,
    pub modality: Option<String>,
    pub body_part: Option<String>,
    pub view_position: Option<String>,
    pub laterality: Option<String>,
    pub rows: Option<u16>,
    pub columns: Option<u16>,
    pub frames: u32,
    pub bits_allocated: Option<u16>,
    pub bits_stored: Option<u16>,
    pub pixel_representation: Option<u16>,
    pub samples_per_pixel: Option<u16>,
    pub photometric: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
}

pub(crate) fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = obj.element_opt(tag).ok()??.to_str().ok()?;
    let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    (!s.is_empty()).then(|| s.to_string())
}

pub(crate) fn int<T: TryFrom<i64>>(obj: &InMemDicomObject, tag: Tag) -> Option<T> {
    obj.element_opt(tag)
        .ok()??
        .to_int::<i64>()
        .ok()?
        .try_into()
        .ok()
}

impl Meta {
    pub(crate) fn read(obj: &dicom_object::DefaultDicomObject) -> Meta {
        let ts = obj
            .meta()
            .transfer_syntax()
            .trim_end_matches(['\0', ' '])
            .to_string();
        let supported = TRANSFER_SYNTAXES.iter().any(|(u, _, ok)| *u == ts && *ok);
        let d: &InMemDicomObject = obj;
        let frames = text(d, tags::NUMBER_OF_FRAMES)
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(1);
        Meta {
            transfer_syntax_supported: supported,
            transfer_syntax: ts,
            sop_class: text(d, tags::SOP_CLASS_UID).or_else(|| {
                let s = obj.meta().media_storage_sop_class_uid();
                let s = s.trim_end_matches(['\0', ' ']);
                (!s.is_empty()).then(|| s.to_string())
            }),
            modality: text(d, tags::MODALITY),
            body_part: text(d, tags::BODY_PART_EXAMINED),
            view_position: text(d, tags::VIEW_POSITION),
            laterality: text(d, tags::IMAGE_LATERALITY).or_else(|| text(d, tags::LATERALITY)),
            rows: int(d, tags::ROWS),
            columns: int(d, tags::COLUMNS),
            frames,
            bits_allocated: int(d, tags::BITS_ALLOCATED),
            bits_stored: int(d, tags::BITS_STORED),
            pixel_representation: int(d, tags::PIXEL_REPRESENTATION),
            samples_per_pixel: int(d, tags::SAMPLES_PER_PIXEL),
            photometric: text(d, tags::PHOTOMETRIC_INTERPRETATION),
            manufacturer: text(d, tags::MANUFACTURER),
            model: text(d, tags::MANUFACTURER_MODEL_NAME),
        }
    }

    pub fn transfer_syntax_label(&self) -> String {
        transfer_syntax_name(&self.transfer_syntax)
            .map(str::to_string)
            .unwrap_or_else(|| format!("unknown transfer syntax {}", self.transfer_syntax))
    }

    /// The panel's rows: label and value, absent attributes as "–".
    pub fn rows_for_panel(&self) -> Vec<(&'static str, String)> {
        let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "–".into());
        let n = |v: Option<u16>| v.map(|v| v.to_string()).unwrap_or_else(|| "–".into());
        let size = match (self.columns, self.rows) {
            (Some(c), Some(r)) => format!("{c} × {r}"),
            _ => "–".into(),
        };
        let bits = format!(
            "{} stored / {} allocated{}",
            n(self.bits_stored),
            n(self.bits_allocated),
            match self.pixel_representation {
                Some(1) => ", signed",
                _ => "",
            }
        );
        vec![
            ("Modality", o(&self.modality)),
            ("Body part", o(&self.body_part)),
            ("View position", o(&self.view_position)),
            ("Laterality", o(&self.laterality)),
            ("Size", size),
            ("Frames", self.frames.to_string()),
            ("Bits", bits),
            ("Photometric", o(&self.photometric)),
            ("Transfer syntax", self.transfer_syntax_label()),
            ("Manufacturer", o(&self.manufacturer)),
            ("Model", o(&self.model)),
        ]
    }
}

/// PatientID, else StudyInstanceUID: who the film belongs to, for grouping only (the audit
/// hashes it at once with a salt of the run; it is never shown, logged or written).
pub fn patient_identity(bytes: &[u8]) -> Option<String> {
    let obj = dicom_object::OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Never)
        .read_until(tags::PIXEL_DATA)
        .from_reader(bytes.get(128..).unwrap_or_default())
        .ok()?;
    text(&obj, tags::PATIENT_ID).or_else(|| text(&obj, tags::STUDY_INSTANCE_UID))
}

/// The patient-identifying attributes present in the file, for `--show-phi` only.
pub fn phi(bytes: &[u8]) -> Vec<(&'static str, String)> {
    let Ok(obj) = dicom_object::OpenFileOptions::new()
        .read_preamble(dicom_object::file::ReadPreamble::Never)
        .read_until(tags::PIXEL_DATA)
        .from_reader(bytes.get(128..).unwrap_or_default())
    else {
        return Vec::new();
    };
    PHI_TAGS
        .iter()
        .filter_map(|(tag, name)| text(&obj, *tag).map(|v| (*name, v)))
        .collect()
}
