//! DIMSE status codes (0000,0900), classified per PS3.7 Annex C and PS3.4 (B.2, C.4).

use std::fmt;

/// The class of a DIMSE status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusClass {
    /// Success (0000).
    Success,
    /// Success with a warning (0001, Bxxx, 0107, 0116).
    Warning,
    /// More responses follow (FF00, FF01).
    Pending,
    /// The operation was cancelled (FE00).
    Cancel,
    /// A failure.
    Failure,
}

impl StatusClass {
    /// The class in snake_case.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Success => "success",
            StatusClass::Warning => "warning",
            StatusClass::Pending => "pending",
            StatusClass::Cancel => "cancel",
            StatusClass::Failure => "failure",
        }
    }
}

/// A DIMSE status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub u16);

impl Status {
    /// Success (0000).
    pub const SUCCESS: Status = Status(0x0000);
    /// Pending (FF00).
    pub const PENDING: Status = Status(0xFF00);
    /// Pending, with optional keys not supported (FF01).
    pub const PENDING_WARNING: Status = Status(0xFF01);
    /// Cancel (FE00).
    pub const CANCEL: Status = Status(0xFE00);

    /// The class of the status.
    pub fn class(self) -> StatusClass {
        match self.0 {
            0x0000 => StatusClass::Success,
            0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF => StatusClass::Warning,
            0xFF00 | 0xFF01 => StatusClass::Pending,
            0xFE00 => StatusClass::Cancel,
            _ => StatusClass::Failure,
        }
    }

    /// Success or warning: the operation did what was asked.
    pub fn is_success(self) -> bool {
        matches!(self.class(), StatusClass::Success | StatusClass::Warning)
    }

    /// Success with a warning.
    pub fn is_warning(self) -> bool {
        self.class() == StatusClass::Warning
    }

    /// More responses follow.
    pub fn is_pending(self) -> bool {
        self.class() == StatusClass::Pending
    }

    /// A failure (neither success, warning, pending nor cancel).
    pub fn is_failure(self) -> bool {
        self.class() == StatusClass::Failure
    }

    /// A7xx "Refused: out of resources": the only failure worth retrying, since the
    /// same data may well be accepted once the remote has room again.
    pub fn is_out_of_resources(self) -> bool {
        self.0 & 0xFF00 == 0xA700
    }

    /// Four uppercase hex digits, as in reports.
    pub fn hex(self) -> String {
        format!("{:04X}", self.0)
    }

    /// What the code means, in words (PS3.4 / PS3.7 Annex C).
    pub fn meaning(self) -> &'static str {
        match self.0 {
            0x0000 => "success",
            0x0001 => "requested optional attributes are not supported",
            0x0107 => "attribute list error",
            0x0116 => "attribute value out of range",
            0xB000 => "coercion of data elements",
            0xB006 => "elements discarded",
            0xB007 => "data set does not match SOP class",
            0xFF00 => "pending: matches are continuing",
            0xFF01 => "pending: matches are continuing, optional keys not supported",
            0xFE00 => "cancelled",
            0x0105 => "no such attribute",
            0x0106 => "invalid attribute value",
            0x0110 => "processing failure",
            0x0111 => "duplicate SOP instance",
            0x0112 => "no such SOP instance",
            0x0117 => "invalid object instance",
            0x0118 => "no such SOP class",
            0x0119 => "class-instance conflict",
            0x0120 => "missing attribute",
            0x0121 => "missing attribute value",
            0x0122 => "refused: SOP class not supported",
            0x0123 => "no such action",
            0x0124 => "refused: not authorized",
            0x0210 => "duplicate invocation",
            0x0211 => "unrecognized operation",
            0x0212 => "mistyped argument",
            0x0213 => "resource limitation",
            0xA700..=0xA7FF => "refused: out of resources",
            0xA900..=0xA9FF => "error: data set does not match SOP class",
            0xA800..=0xA8FF => "refused: move destination unknown",
            0xC000..=0xCFFF => "error: cannot understand",
            0xB001..=0xBFFF => "warning",
            _ => match self.class() {
                StatusClass::Failure => "failure",
                StatusClass::Warning => "warning",
                _ => "unknown status",
            },
        }
    }
}

impl Status {
    /// What a C-GET or C-MOVE response status means (PS3.4 C.4.2.1.5, C.4.3.1.4),
    /// where codes read differently than for a C-STORE.
    pub fn retrieve_meaning(self) -> &'static str {
        match self.0 {
            0x0000 => "success: all sub-operations complete",
            0xA701 => "refused: out of resources, unable to calculate the number of matches",
            0xA702 => "refused: out of resources, unable to perform sub-operations",
            0xA801 => "refused: move destination unknown",
            0xA900 => "error: identifier does not match SOP class",
            0xAA00..=0xAAFF => "failed: none of the frames requested were found in the SOP instance",
            0xC000..=0xCFFF => "failed: unable to process",
            0xFE00 => "cancelled: sub-operations terminated",
            0xB000 => "warning: sub-operations complete, one or more failures or warnings",
            0xFF00 => "pending: sub-operations are continuing",
            _ => self.meaning(),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({})", self.0, self.meaning())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_ps3_7_annex_c() {
        assert_eq!(Status(0x0000).class(), StatusClass::Success);
        for w in [0x0001, 0xB000, 0xB007, 0xBFFF, 0x0107, 0x0116] {
            assert_eq!(Status(w).class(), StatusClass::Warning, "{w:04X}");
            assert!(Status(w).is_success());
        }
        assert_eq!(Status(0xFF00).class(), StatusClass::Pending);
        assert_eq!(Status(0xFF01).class(), StatusClass::Pending);
        assert_eq!(Status(0xFE00).class(), StatusClass::Cancel);
        for f in [
            0xA700, 0xA7FF, 0xA900, 0xC000, 0xCFFF, 0x0122, 0x0211, 0x0110, 0x0124, 0xA801, 0x1234,
        ] {
            assert_eq!(Status(f).class(), StatusClass::Failure, "{f:04X}");
            assert!(!Status(f).is_success());
        }
    }

    #[test]
    fn only_a7xx_is_out_of_resources() {
        assert!(Status(0xA700).is_out_of_resources());
        assert!(Status(0xA702).is_out_of_resources());
        assert!(!Status(0xA900).is_out_of_resources());
        assert!(!Status(0xC000).is_out_of_resources());
        assert!(!Status(0x0213).is_out_of_resources());
    }

    #[test]
    fn retrieve_statuses_read_as_ps3_4_c_4_3_1_4() {
        assert!(Status(0xA702).is_out_of_resources());
        assert!(Status(0xA801).is_failure() && !Status(0xA801).is_out_of_resources());
        assert!(Status(0xA801).retrieve_meaning().contains("move destination unknown"));
        assert!(Status(0xB000).is_warning());
        assert!(Status(0xB000).retrieve_meaning().contains("one or more failures"));
        assert_eq!(Status(0xFE00).class(), StatusClass::Cancel);
        assert!(Status(0xC001).retrieve_meaning().contains("unable to process"));
    }

    #[test]
    fn hex_and_display() {
        assert_eq!(Status(0xb000).hex(), "B000");
        assert_eq!(Status(0xA700).to_string(), "A700 (refused: out of resources)");
    }
}
