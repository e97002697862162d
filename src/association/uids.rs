//! Well-known UIDs: transfer syntaxes, service classes, and the storage SOP classes
//! proposed by the default presentation-context profile.

/// Implicit VR Little Endian: the DICOM default transfer syntax.
pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// Deflated Explicit VR Little Endian.
pub const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";
/// Explicit VR Big Endian (retired, still found in archives).
pub const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";

/// Media Storage Directory Storage: a DICOMDIR.
pub const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";

/// Verification SOP Class (C-ECHO).
pub const VERIFICATION: &str = "1.2.840.10008.1.1";
/// Patient Root Query/Retrieve Information Model - FIND.
pub const PATIENT_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.1.1";
/// Study Root Query/Retrieve Information Model - FIND.
pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
/// Modality Worklist Information Model - FIND (PS3.4 K.6).
pub const MODALITY_WORKLIST_FIND: &str = "1.2.840.10008.5.1.4.31";
/// Patient Root Query/Retrieve Information Model - MOVE.
pub const PATIENT_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.1.2";
/// Patient Root Query/Retrieve Information Model - GET.
pub const PATIENT_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.1.3";
/// Study Root Query/Retrieve Information Model - MOVE.
pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";
/// Study Root Query/Retrieve Information Model - GET.
pub const STUDY_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.2.3";

/// The uncompressed transfer syntaxes we can send any data set in (converting if needed),
/// in order of preference.
pub const UNCOMPRESSED_LE: [&str; 2] = [EXPLICIT_VR_LE, IMPLICIT_VR_LE];

/// Whether a transfer syntax carries native (not encapsulated) pixel data, element
/// by element as stored.
pub fn is_uncompressed(ts: &str) -> bool {
    matches!(ts, IMPLICIT_VR_LE | EXPLICIT_VR_LE | EXPLICIT_VR_BE)
}

/// Whether we can re-encode a data set in this syntax into the uncompressed ones,
/// streaming: the uncompressed syntaxes, and Deflated Explicit VR LE (inflated).
pub fn is_convertible(ts: &str) -> bool {
    is_uncompressed(ts) || ts == DEFLATED_EXPLICIT_VR_LE
}

/// A short human name for a transfer syntax UID, for messages.
pub fn transfer_syntax_name(uid: &str) -> String {
    match dicom_transfer_syntax_registry::TransferSyntaxRegistry.get(uid) {
        Some(ts) => format!("{} ({uid})", ts.name()),
        None => format!("unknown transfer syntax {uid}"),
    }
}

use dicom_encoding::TransferSyntaxIndex;

/// Storage SOP classes proposed by the default profile (each with Explicit and
/// Implicit VR Little Endian). Together with Verification and the two FIND models
/// they stay well below the 128 presentation contexts an association can carry.
pub const DEFAULT_STORAGE_SOP_CLASSES: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.1",        // Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.1.1",      // Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",    // Digital X-Ray Image Storage - For Processing
    "1.2.840.10008.5.1.4.1.1.1.2",      // Digital Mammography X-Ray - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",    // Digital Mammography X-Ray - For Processing
    "1.2.840.10008.5.1.4.1.1.1.3",      // Digital Intra-Oral X-Ray - For Presentation
    "1.2.840.10008.5.1.4.1.1.2",        // CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1",      // Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.2",      // Legacy Converted Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.3.1",      // Ultrasound Multi-frame Image Storage
    "1.2.840.10008.5.1.4.1.1.4",        // MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.1",      // Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.4.2",      // MR Spectroscopy Storage
    "1.2.840.10008.5.1.4.1.1.4.3",      // Enhanced MR Color Image Storage
    "1.2.840.10008.5.1.4.1.1.4.4",      // Legacy Converted Enhanced MR Image Storage
    "1.2.840.10008.5.1.4.1.1.6.1",      // Ultrasound Image Storage
    "1.2.840.10008.5.1.4.1.1.6.2",      // Enhanced US Volume Storage
    "1.2.840.10008.5.1.4.1.1.7",        // Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.7.1",      // Multi-frame Single Bit SC
    "1.2.840.10008.5.1.4.1.1.7.2",      // Multi-frame Grayscale Byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",      // Multi-frame Grayscale Word SC
    "1.2.840.10008.5.1.4.1.1.7.4",      // Multi-frame True Color SC
    "1.2.840.10008.5.1.4.1.1.9.1.1",    // 12-lead ECG Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.1.2",    // General ECG Waveform Storage
    "1.2.840.10008.5.1.4.1.1.11.1",     // Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.11.2",     // Color Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.12.1",     // X-Ray Angiographic Image Storage
    "1.2.840.10008.5.1.4.1.1.12.1.1",   // Enhanced XA Image Storage
    "1.2.840.10008.5.1.4.1.1.12.2",     // X-Ray Radiofluoroscopic Image Storage
    "1.2.840.10008.5.1.4.1.1.12.2.1",   // Enhanced XRF Image Storage
    "1.2.840.10008.5.1.4.1.1.13.1.1",   // X-Ray 3D Angiographic Image Storage
    "1.2.840.10008.5.1.4.1.1.13.1.3",   // Breast Tomosynthesis Image Storage
    "1.2.840.10008.5.1.4.1.1.20",       // Nuclear Medicine Image Storage
    "1.2.840.10008.5.1.4.1.1.66",       // Raw Data Storage
    "1.2.840.10008.5.1.4.1.1.66.1",     // Spatial Registration Storage
    "1.2.840.10008.5.1.4.1.1.66.4",     // Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.67",       // Real World Value Mapping Storage
    "1.2.840.10008.5.1.4.1.1.77.1.1",   // VL Endoscopic Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.2",   // VL Microscopic Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.4",   // VL Photographic Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.5.1", // Ophthalmic Photography 8 Bit Image Storage
    "1.2.840.10008.5.1.4.1.1.77.1.6",   // VL Whole Slide Microscopy Image Storage
    "1.2.840.10008.5.1.4.1.1.88.11",    // Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",    // Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",    // Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",    // Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.88.59",    // Key Object Selection Document
    "1.2.840.10008.5.1.4.1.1.88.67",    // X-Ray Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.104.1",    // Encapsulated PDF Storage
    "1.2.840.10008.5.1.4.1.1.128",      // Positron Emission Tomography Image Storage
    "1.2.840.10008.5.1.4.1.1.130",      // Enhanced PET Image Storage
    "1.2.840.10008.5.1.4.1.1.128.1",    // Legacy Converted Enhanced PET Image Storage
    "1.2.840.10008.5.1.4.1.1.481.1",    // RT Image Storage
    "1.2.840.10008.5.1.4.1.1.481.2",    // RT Dose Storage
    "1.2.840.10008.5.1.4.1.1.481.3",    // RT Structure Set Storage
    "1.2.840.10008.5.1.4.1.1.481.4",    // RT Beams Treatment Record Storage
    "1.2.840.10008.5.1.4.1.1.481.5",    // RT Plan Storage
    "1.2.840.10008.5.1.4.1.1.481.8",    // RT Ion Plan Storage
];

/// A UID as PS3.5 9.1 allows it: digits and dots, at most 64 characters, no empty
/// component. Anything else is refused, never turned into a file name.
pub fn is_valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && uid.split('.').all(|c| !c.is_empty())
}
