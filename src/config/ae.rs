//! DICOM AE title validation (VR AE: default character repertoire, no `\`, no control characters).

/// Longest AE title DICOM allows, in characters (PS3.5 6.2, VR AE).
pub const AE_TITLE_MAX_LEN: usize = 16;

/// Checks an AE title against the rules of the DICOM AE value representation:
/// not empty, not only spaces, at most 16 characters once leading and trailing
/// spaces (which are insignificant) are removed, printable ASCII only (the
/// default character repertoire) and no backslash.
///
/// The error is the reason in words, meant to follow `invalid AE title "X": `,
/// e.g. `it is 17 characters long; at most 16 are allowed`.
pub fn validate_ae_title(ae: &str) -> Result<(), String> {
    normalize_ae_title(ae).map(|_| ())
}

/// [`validate_ae_title`], returning the significant part: the title without its
/// leading and trailing spaces (what goes on the wire).
pub fn normalize_ae_title(ae: &str) -> Result<String, String> {
    if ae.is_empty() {
        return Err("it is empty".to_string());
    }
    for c in ae.chars() {
        if c == '\\' {
            return Err("it contains a backslash (\\), which DICOM forbids in an AE title".into());
        }
        if c.is_control() {
            return Err(format!(
                "it contains the control character U+{:04X}, which DICOM forbids in an AE title",
                u32::from(c)
            ));
        }
        if !c.is_ascii() {
            return Err(format!(
                "it contains {c:?}; an AE title may use only printable ASCII \
                 (the DICOM default character repertoire)"
            ));
        }
    }
    let significant = ae.trim_matches(' ');
    if significant.is_empty() {
        return Err("it is all spaces".to_string());
    }
    // Printable ASCII only from here on, so bytes are characters.
    if significant.len() > AE_TITLE_MAX_LEN {
        return Err(format!(
            "it is {} characters long; at most {AE_TITLE_MAX_LEN} are allowed",
            significant.len()
        ));
    }
    Ok(significant.to_string())
}
