//! A structural walk over a peer's data set bytes, run before dicom-parser sees
//! them.
//!
//! dicom-parser trusts declared lengths: it reserves (and zero-fills) the length an
//! element header claims before reading the value, so eight bytes claiming 4 GiB
//! cost 4 GiB. This walk checks every declared length against the bytes that can
//! actually follow, bounds sequence nesting and the number of values a text element
//! splits into, and allocates nothing. A data set that passes costs dicom-parser a
//! small multiple of its own size. Errors name tags and lengths, never values
//! (identifiers carry patient data).

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_encoding::{Codec, Endianness, TransferSyntax, TransferSyntaxIndex};
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::association::uids;

/// Sequences nested deeper than this are refused (dicom-parser recurses).
pub const MAX_DEPTH: usize = 16;
/// A text element may split into at most this many values (each becomes a `String`).
pub const MAX_VALUES_PER_ELEMENT: usize = 65_536;

const UNDEFINED: u32 = 0xFFFF_FFFF;

/// Why a data set from the remote was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataSetError {
    #[error("the data set is {size} bytes, more than the limit of {limit} (limits.max_data_set_bytes)")]
    /// The data set is larger than `limits.max_data_set_bytes`.
    TooLarge {
        /// Its size (bytes).
        size: usize,
        /// The limit (bytes).
        limit: usize,
    },
    #[error("malformed data set: {0}")]
    /// The data set does not parse.
    Malformed(String),
    #[error("data sets in transfer syntax {0} are not decoded")]
    /// The data set is in a transfer syntax we do not decode.
    Unsupported(String),
}

/// How a data set is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Enc {
    explicit: bool,
    big_endian: bool,
}

/// Check `bytes` (a data set in transfer syntax `ts_uid`, at most `limit` bytes),
/// then decode it. The only entry point by which peer data sets reach dicom-parser.
pub fn decode_checked(bytes: &[u8], ts_uid: &str, limit: usize) -> Result<InMemDicomObject, DataSetError> {
    let ts = check(bytes, ts_uid, limit)?;
    InMemDicomObject::read_dataset_with_ts(bytes, ts).map_err(|e| DataSetError::Malformed(e.to_string()))
}

/// The structural check alone; returns the transfer syntax to decode with.
pub fn check(bytes: &[u8], ts_uid: &str, limit: usize) -> Result<&'static TransferSyntax, DataSetError> {
    if bytes.len() > limit {
        return Err(DataSetError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let uid = ts_uid.trim_end_matches(['\0', ' ']);
    let ts = TransferSyntaxRegistry
        .get(uid)
        .ok_or_else(|| DataSetError::Unsupported(uid.to_string()))?;
    // A deflated data set is a compressed stream: its size says nothing about what
    // inflating it costs, and nothing we ask for needs one.
    if matches!(ts.codec(), Codec::Dataset(_)) {
        return Err(DataSetError::Unsupported(uid.to_string()));
    }
    let enc = Enc {
        explicit: uid != uids::IMPLICIT_VR_LE,
        big_endian: ts.endianness() == Endianness::Big,
    };
    walk(bytes, enc)?;
    Ok(ts)
}

/// Walk a whole data set in the given encoding (exposed for the fuzzers).
pub fn check_encoding(bytes: &[u8], explicit_vr: bool, big_endian: bool) -> Result<(), DataSetError> {
    walk(
        bytes,
        Enc {
            explicit: explicit_vr,
            big_endian,
        },
    )
}

fn walk(bytes: &[u8], enc: Enc) -> Result<(), DataSetError> {
    let w = Walker { b: bytes };
    let end = w.data_set(0, bytes.len(), 0, false, enc)?;
    if end != bytes.len() {
        return Err(bad(format!("unexpected delimiter at byte {end}")));
    }
    Ok(())
}

/// The values of the top-level elements `wanted` (ascending tags) in `head`, the
/// first bytes of a data set in transfer syntax `ts_uid`: the walk stops at the
/// first element past the last wanted tag, so the rest of the data set (its pixel
/// data) need not have arrived. A wanted element the walk passed without finding is
/// `None` in its place. `None` overall when the head ends first, does not walk, or
/// is deflated: then the caller reads the whole data set instead.
pub(crate) fn leading_values<'a>(head: &'a [u8], ts_uid: &str, wanted: &[Tag]) -> Option<Vec<Option<&'a [u8]>>> {
    let uid = ts_uid.trim_end_matches(['\0', ' ']);
    let ts = TransferSyntaxRegistry.get(uid)?;
    if matches!(ts.codec(), Codec::Dataset(_)) {
        return None;
    }
    let enc = Enc {
        explicit: uid != uids::IMPLICIT_VR_LE,
        big_endian: ts.endianness() == Endianness::Big,
    };
    let last = *wanted.iter().max()?;
    let w = Walker { b: head };
    let end = head.len();
    let mut found = vec![None; wanted.len()];
    let mut pos = 0;
    while pos < end {
        let tag = w.tag(pos, end, enc).ok()?;
        if tag > last {
            return Some(found);
        }
        if tag.group() == 0xFFFE {
            return None;
        }
        let (len, header) = if enc.explicit {
            let vr = VR::from_binary(w.bytes::<2>(pos + 4, end).ok()?)?;
            if long_length(vr) {
                (w.u32(pos + 8, end, enc).ok()?, 12)
            } else {
                (u32::from(w.u16(pos + 6, end, enc).ok()?), 8)
            }
        } else {
            (w.u32(pos + 4, end, enc).ok()?, 8)
        };
        let start = pos + header;
        if len == UNDEFINED {
            // A sequence (pixel data comes after any tag we look for).
            pos = w.sequence(start, end, None, 1, enc).ok()?;
            continue;
        }
        let value_end = start.checked_add(len as usize).filter(|e| *e <= end)?;
        if let Some(i) = wanted.iter().position(|t| *t == tag) {
            found[i] = Some(&head[start..value_end]);
        }
        pos = value_end;
    }
    None
}

fn bad(msg: String) -> DataSetError {
    DataSetError::Malformed(msg)
}

struct Walker<'a> {
    b: &'a [u8],
}

impl Walker<'_> {
    fn bytes<const N: usize>(&self, pos: usize, end: usize) -> Result<[u8; N], DataSetError> {
        pos.checked_add(N)
            .filter(|e| *e <= end)
            .and_then(|e| self.b.get(pos..e))
            .and_then(|s| <[u8; N]>::try_from(s).ok())
            .ok_or_else(|| bad(format!("truncated header at byte {pos}")))
    }

    fn u16(&self, pos: usize, end: usize, enc: Enc) -> Result<u16, DataSetError> {
        let b = self.bytes::<2>(pos, end)?;
        Ok(if enc.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&self, pos: usize, end: usize, enc: Enc) -> Result<u32, DataSetError> {
        let b = self.bytes::<4>(pos, end)?;
        Ok(if enc.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn tag(&self, pos: usize, end: usize, enc: Enc) -> Result<Tag, DataSetError> {
        Ok(Tag(self.u16(pos, end, enc)?, self.u16(pos + 2, end, enc)?))
    }

    /// Elements from `pos` to `end`; inside an undefined-length item, up to and
    /// including its delimiter. Returns the position after what was walked.
    fn data_set(
        &self,
        mut pos: usize,
        end: usize,
        depth: usize,
        in_item: bool,
        enc: Enc,
    ) -> Result<usize, DataSetError> {
        loop {
            if pos == end {
                if in_item {
                    return Err(bad("item without an item delimiter".into()));
                }
                return Ok(pos);
            }
            let tag = self.tag(pos, end, enc)?;
            if tag.group() == 0xFFFE {
                if tag.element() == 0xE00D && in_item {
                    self.u32(pos + 4, end, enc)?;
                    return Ok(pos + 8);
                }
                return Err(bad(format!("unexpected {tag} at byte {pos}")));
            }
            let (vr, len, header) = if enc.explicit {
                let raw = self.bytes::<2>(pos + 4, end)?;
                let vr = VR::from_binary(raw).ok_or_else(|| bad(format!("invalid VR in {tag} at byte {pos}")))?;
                if long_length(vr) {
                    (vr, self.u32(pos + 8, end, enc)?, 12)
                } else {
                    (vr, u32::from(self.u16(pos + 6, end, enc)?), 8)
                }
            } else {
                (implicit_vr(tag), self.u32(pos + 4, end, enc)?, 8)
            };
            let start = pos + header;
            if len == UNDEFINED {
                // As dicom-parser: Pixel Data of undefined length is encapsulated
                // (fragments); any other element of undefined length, whatever its
                // VR, is a sequence of items in the same encoding.
                pos = if tag == Tag(0x7FE0, 0x0010) {
                    self.fragments(start, end, enc)?
                } else {
                    self.sequence(start, end, None, depth + 1, enc)?
                };
                continue;
            }
            let len = len as usize;
            let available = end.saturating_sub(start);
            if len > available {
                return Err(bad(format!("{tag} declares {len} bytes but only {available} follow")));
            }
            // dicom-parser reads numbers in whole units but advances its position by
            // the declared length: a length that is not a multiple of the unit would
            // leave it reading the next header out of step (found by fuzzing).
            let unit = value_unit(vr);
            if len % unit != 0 {
                return Err(bad(format!("{tag} ({vr}) has {len} bytes, not a multiple of {unit}")));
            }
            let value_end = start + len;
            if vr == VR::SQ {
                self.sequence(start, value_end, Some(value_end), depth + 1, enc)?;
            } else if is_text(vr) {
                let values = self.b[start..value_end].iter().filter(|c| **c == b'\\').count() + 1;
                if values > MAX_VALUES_PER_ELEMENT {
                    return Err(bad(format!(
                        "{tag} has {values} values, more than {MAX_VALUES_PER_ELEMENT}"
                    )));
                }
            }
            pos = value_end;
        }
    }

    /// Items of a sequence from `pos`: up to `defined_end`, or up to and including
    /// the sequence delimiter when the length is undefined.
    fn sequence(
        &self,
        mut pos: usize,
        end: usize,
        defined_end: Option<usize>,
        depth: usize,
        enc: Enc,
    ) -> Result<usize, DataSetError> {
        if depth > MAX_DEPTH {
            return Err(bad(format!("sequences nested deeper than {MAX_DEPTH}")));
        }
        loop {
            if defined_end == Some(pos) {
                return Ok(pos);
            }
            if pos >= end {
                return Err(bad("sequence without a sequence delimiter".into()));
            }
            let tag = self.tag(pos, end, enc)?;
            let len = self.u32(pos + 4, end, enc)?;
            let start = pos + 8;
            match (tag.group(), tag.element()) {
                (0xFFFE, 0xE000) if len == UNDEFINED => {
                    pos = self.data_set(start, end, depth, true, enc)?;
                }
                (0xFFFE, 0xE000) => {
                    let len = len as usize;
                    let available = end.saturating_sub(start);
                    if len > available {
                        return Err(bad(format!(
                            "sequence item declares {len} bytes but only {available} follow"
                        )));
                    }
                    self.data_set(start, start + len, depth, false, enc)?;
                    pos = start + len;
                }
                (0xFFFE, 0xE0DD) if defined_end.is_none() => return Ok(start),
                _ => return Err(bad(format!("unexpected {tag} in a sequence at byte {pos}"))),
            }
        }
    }

    /// Encapsulated pixel data: defined-length fragments up to the sequence delimiter.
    fn fragments(&self, mut pos: usize, end: usize, enc: Enc) -> Result<usize, DataSetError> {
        loop {
            let tag = self.tag(pos, end, enc)?;
            let len = self.u32(pos + 4, end, enc)?;
            let start = pos + 8;
            match (tag.group(), tag.element()) {
                (0xFFFE, 0xE000) if len != UNDEFINED => {
                    let len = len as usize;
                    if len > end.saturating_sub(start) {
                        return Err(bad(format!(
                            "pixel data fragment declares {len} bytes, more than follow"
                        )));
                    }
                    pos = start + len;
                }
                (0xFFFE, 0xE0DD) => return Ok(start),
                _ => return Err(bad(format!("unexpected {tag} in encapsulated pixel data"))),
            }
        }
    }
}

/// Explicit VRs with a 4-byte length (PS3.5 7.1.2).
pub(crate) fn long_length(vr: VR) -> bool {
    matches!(
        vr,
        VR::OB
            | VR::OD
            | VR::OF
            | VR::OL
            | VR::OV
            | VR::OW
            | VR::SQ
            | VR::SV
            | VR::UC
            | VR::UN
            | VR::UR
            | VR::UT
            | VR::UV
    )
}

fn is_text(vr: VR) -> bool {
    matches!(
        vr,
        VR::AE
            | VR::AS
            | VR::CS
            | VR::DA
            | VR::DS
            | VR::DT
            | VR::IS
            | VR::LO
            | VR::PN
            | VR::SH
            | VR::TM
            | VR::UC
            | VR::UI
    )
}

/// Bytes per value of a binary VR (1 for the rest).
fn value_unit(vr: VR) -> usize {
    match vr {
        VR::SS | VR::US | VR::OW => 2,
        VR::AT | VR::SL | VR::UL | VR::FL | VR::OF | VR::OL => 4,
        VR::FD | VR::OD | VR::SV | VR::UV | VR::OV => 8,
        _ => 1,
    }
}

/// In Implicit VR the dictionary says what an element is, exactly as dicom-parser's
/// decoder decides it (Pixel Data and Overlay Data are OW).
fn implicit_vr(tag: Tag) -> VR {
    if tag == Tag(0x7FE0, 0x0010) || (tag.0 >> 8 == 0x60 && tag.1 == 0x3000) {
        return VR::OW;
    }
    StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.vr().relaxed())
        .unwrap_or(VR::UN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit_le() -> &'static str {
        uids::EXPLICIT_VR_LE
    }

    /// A data set written by dicom-object: a sequence of undefined length before the
    /// study (as some modalities write them), then the UIDs and the pixel data.
    fn encoded(ts_uid: &str) -> Vec<u8> {
        use dicom_core::value::{DataSetSequence, PrimitiveValue};
        use dicom_core::{DataElement, Length};
        use dicom_dictionary_std::tags;
        let mut item = InMemDicomObject::new_empty();
        item.put(DataElement::new(
            tags::CODE_VALUE,
            VR::SH,
            PrimitiveValue::from("T-D0050"),
        ));
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.2"),
        ));
        obj.put(DataElement::new(
            tags::ANATOMIC_REGION_SEQUENCE,
            VR::SQ,
            DataSetSequence::new(vec![item], Length::UNDEFINED),
        ));
        obj.put(DataElement::new(
            tags::STUDY_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3"),
        ));
        obj.put(DataElement::new(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.3.4"),
        ));
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::from(vec![0u8; 4096]),
        ));
        let ts = TransferSyntaxRegistry.get(ts_uid).unwrap();
        let mut out = Vec::new();
        obj.write_dataset_with_ts(&mut out, ts).unwrap();
        out
    }

    #[test]
    fn leading_values_are_found_in_the_head_alone() {
        use dicom_dictionary_std::tags;
        let wanted = [tags::STUDY_INSTANCE_UID, tags::SERIES_INSTANCE_UID];
        for ts in [uids::EXPLICIT_VR_LE, uids::IMPLICIT_VR_LE, uids::EXPLICIT_VR_BE] {
            let bytes = encoded(ts);
            // Only the first bytes, past the series UID but short of the pixel data's end.
            let head = &bytes[..bytes.len() - 1000];
            let values = leading_values(head, ts, &wanted).unwrap_or_else(|| panic!("{ts}"));
            let text: Vec<_> = values
                .iter()
                .map(|v| std::str::from_utf8(v.unwrap()).unwrap())
                .collect();
            assert_eq!(text[0].trim_end_matches('\0'), "1.2.3", "{ts}");
            assert_eq!(text[1].trim_end_matches('\0'), "1.2.3.4", "{ts}");
            // A head that ends before the series UID: read the file instead.
            let cut = head.windows(7).position(|w| w == b"1.2.3.4").unwrap();
            assert_eq!(leading_values(&bytes[..cut], ts, &wanted), None, "{ts}");
        }
        // A data set without a study: walked past it, so it is absent, not unknown.
        let bytes = encoded(uids::EXPLICIT_VR_LE);
        let values = leading_values(
            &bytes,
            uids::EXPLICIT_VR_LE,
            &[Tag(0x0020, 0x000C), tags::SERIES_INSTANCE_UID],
        )
        .unwrap();
        assert!(values[0].is_none() && values[1].is_some());
        // Deflated data sets are not walked.
        assert_eq!(leading_values(&bytes, uids::DEFLATED_EXPLICIT_VR_LE, &wanted), None);
    }

    #[test]
    fn a_huge_declared_length_is_refused_before_any_allocation() {
        // (0010,0020) LO, but as implicit: 4-byte length 0xFFFFFFF0, 8 bytes follow.
        let mut b = vec![0x10, 0x00, 0x20, 0x00];
        b.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        b.extend_from_slice(b"12345678");
        let err = decode_checked(&b, uids::IMPLICIT_VR_LE, 1 << 20).unwrap_err();
        assert!(
            err.to_string()
                .contains("(0010,0020) declares 4294967280 bytes but only 8 follow"),
            "{err}"
        );
    }

    #[test]
    fn well_formed_data_sets_pass() {
        let q = crate::dimse::FindQuery::new(
            crate::dimse::QueryModel::StudyRoot,
            crate::dimse::QueryLevel::Study,
            vec![
                "PatientName=DOE*".parse().unwrap(),
                "ReferencedStudySequence".parse().unwrap(),
            ],
        )
        .unwrap();
        for ts_uid in [uids::IMPLICIT_VR_LE, explicit_le(), "1.2.840.10008.1.2.2"] {
            let ts = TransferSyntaxRegistry.get(ts_uid).unwrap();
            let mut bytes = Vec::new();
            q.identifier().unwrap().write_dataset_with_ts(&mut bytes, ts).unwrap();
            let obj = decode_checked(&bytes, ts_uid, 1 << 20).unwrap();
            assert_eq!(obj.element_by_name("PatientName").unwrap().to_str().unwrap(), "DOE*");
        }
    }

    #[test]
    fn nested_lengths_are_checked_too() {
        // (0008,1110) SQ, defined length 16: one item of 8 bytes whose element claims 4 GiB.
        let mut b = vec![0x08, 0x00, 0x10, 0x11, b'S', b'Q', 0, 0];
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0]);
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&[0x08, 0x00, 0x50, 0x11, b'U', b'N', 0, 0]);
        assert!(matches!(
            check_encoding(&b, true, false),
            Err(DataSetError::Malformed(_))
        ));
    }

    #[test]
    fn too_large_and_too_deep_are_refused() {
        assert!(matches!(
            check(&[0u8; 100], explicit_le(), 10),
            Err(DataSetError::TooLarge { size: 100, limit: 10 })
        ));
        // Undefined-length sequences inside undefined-length items, 40 deep.
        let mut b = Vec::new();
        for _ in 0..40 {
            b.extend_from_slice(&[0x08, 0x00, 0x10, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
            b.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        }
        let err = check_encoding(&b, true, false).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }

    /// Found by the `find_identifier` fuzzer: an SL of 2 bytes made dicom-parser
    /// read the next header 2 bytes early, and allocate a "length" made of value
    /// bytes (1.3 GB).
    #[test]
    fn numeric_values_must_be_whole_units() {
        let mut b = vec![0x28, 0x00, 0x00, 0x01, b'S', b'L', 2, 0, 0, 0];
        b.extend_from_slice(&[0x28, 0x00, 0x01, 0x03, b'C', b'S', 2, 0, b'N', b'O']);
        let err = check_encoding(&b, true, false).unwrap_err();
        assert!(
            err.to_string()
                .contains("(0028,0100) (SL) has 2 bytes, not a multiple of 4"),
            "{err}"
        );
        let ts = uids::EXPLICIT_VR_LE;
        assert!(decode_checked(&b, ts, 1 << 20).is_err());
        // The same element, whole: fine.
        let mut ok = vec![0x28, 0x00, 0x00, 0x01, b'S', b'L', 4, 0, 0, 0, 0, 0];
        ok.extend_from_slice(&[0x28, 0x00, 0x01, 0x03, b'C', b'S', 2, 0, b'N', b'O']);
        assert!(decode_checked(&ok, ts, 1 << 20).is_ok());
    }

    #[test]
    fn many_values_are_refused() {
        let value = vec![b'\\'; 70_000];
        let mut b = vec![0x10, 0x00, 0x20, 0x00];
        b.extend_from_slice(&(value.len() as u32).to_le_bytes());
        b.extend_from_slice(&value);
        assert!(check_encoding(&b, false, false).is_err());
    }
}
