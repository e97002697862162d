//! Specific Character Set on the way in: dicom-parser decodes text with the first
//! value of (0008,0005) only, so ISO 2022 code extensions (`\ISO 2022 IR 87`,
//! `ISO 2022 IR 6\ISO 2022 IR 149`, ...) come out as Latin-1. Latin-1 decoding is
//! lossless, so the bytes are recovered and decoded again here, following the
//! escape sequences of PS3.5 6.1.2.5 (Japanese, Korean, Chinese, the ISO 8859 parts).

use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::text::SpecificCharacterSet;
use dicom_object::InMemDicomObject;
use encoding::label::encoding_from_whatwg_label;
use encoding::{DecoderTrap, EncodingRef};

/// Re-decode the text of `obj` (and of its sequence items) where its Specific
/// Character Set uses ISO 2022 code extensions that the parser did not apply.
///
/// Without a Specific Character Set the text should be ASCII; an SCP that leaves
/// it out (DCMTK's wlmscpfs by default) may still send its files' bytes: text with
/// ISO 2022 escape sequences is decoded as such, and text that is valid UTF-8 as
/// UTF-8 (what a Latin-1 name almost never is), else it stays Latin-1.
pub fn redecode_text(obj: &mut InMemDicomObject) {
    let Some(declared) = declared_sets(obj) else {
        fix_object(obj, Initial { g1: G1::None }, Mode::Undeclared);
        return;
    };
    let first = declared.first().map(String::as_str).unwrap_or("");
    let parsed_as = SpecificCharacterSet::from_code(first);
    // The parser read the text as Latin-1 (lossless) only for these.
    let lossless = matches!(
        first,
        "" | "ISO_IR 6" | "ISO 2022 IR 6" | "ISO_IR 100" | "ISO 2022 IR 100"
    ) || parsed_as.is_none();
    if !lossless || (declared.len() < 2 && parsed_as.is_some()) {
        return;
    }
    let initial = Initial::from_first(first);
    fix_object(obj, initial, Mode::Declared);
}

/// Whether the object declared its character set.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Declared,
    Undeclared,
}

/// The values of (0008,0005), trimmed; None when absent or empty.
fn declared_sets(obj: &InMemDicomObject) -> Option<Vec<String>> {
    let e = obj.element(tags::SPECIFIC_CHARACTER_SET).ok()?;
    let v = e.to_str().ok()?;
    let sets: Vec<String> = v.split('\\').map(|s| s.trim().to_string()).collect();
    if sets.iter().all(String::is_empty) {
        return None;
    }
    Some(sets)
}

fn fix_object(obj: &mut InMemDicomObject, initial: Initial, mode: Mode) {
    let mut changed: Vec<DataElement<InMemDicomObject>> = Vec::new();
    for e in obj.iter() {
        let tag = e.header().tag;
        let vr = e.header().vr;
        match e.value() {
            Value::Sequence(seq) => {
                let mut items = seq.items().to_vec();
                for item in &mut items {
                    fix_object(item, initial, mode);
                }
                changed.push(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
            }
            Value::Primitive(p) if is_text(vr) => {
                let parts: Vec<String> = match p {
                    PrimitiveValue::Strs(s) => s.iter().cloned().collect(),
                    PrimitiveValue::Str(s) => vec![s.clone()],
                    _ => continue,
                };
                let joined = parts.join("\\");
                if joined.is_ascii() && !joined.contains('\u{1b}') {
                    continue;
                }
                let Some(bytes) = latin1_bytes(&joined) else {
                    continue;
                };
                let text = match mode {
                    Mode::Declared => decode_iso2022(&bytes, initial),
                    Mode::Undeclared if bytes.contains(&0x1b) => decode_iso2022(&bytes, initial),
                    Mode::Undeclared => match String::from_utf8(bytes) {
                        Ok(utf8) => utf8,
                        Err(_) => continue,
                    },
                };
                let values: Vec<String> = text.split('\\').map(str::to_string).collect();
                changed.push(DataElement::new(tag, vr, PrimitiveValue::Strs(values.into())));
            }
            _ => {}
        }
    }
    for e in changed {
        obj.put(e);
    }
}

/// The VRs whose values the Specific Character Set applies to (PS3.5 6.1.2.3).
fn is_text(vr: VR) -> bool {
    matches!(vr, VR::SH | VR::LO | VR::ST | VR::LT | VR::UC | VR::UT | VR::PN)
}

fn latin1_bytes(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// The code elements in force at the start of each value (PS3.5 6.1.2.5.3): G0
/// ASCII (or JIS X 0201 Romaji for IR 13), G1 from the first value.
#[derive(Clone, Copy)]
struct Initial {
    g1: G1,
}

impl Initial {
    fn from_first(first: &str) -> Self {
        let code = first.rsplit(' ').next().unwrap_or("");
        let g1 = match code {
            "13" => G1::Katakana,
            "100" | "101" | "109" | "110" | "126" | "127" | "138" | "144" | "148" | "166" => {
                G1::Single(code_page(code))
            }
            _ => G1::None,
        };
        Initial { g1 }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum G0 {
    Ascii,
    Jis0208,
    Jis0212,
}

#[derive(Clone, Copy)]
enum G1 {
    None,
    Katakana,
    Single(Option<EncodingRef>),
    Korean,
    Chinese,
}

fn code_page(ir: &str) -> Option<EncodingRef> {
    let label = match ir {
        "100" => "iso-8859-1",
        "101" => "iso-8859-2",
        "109" => "iso-8859-3",
        "110" => "iso-8859-4",
        "126" => "iso-8859-7",
        "127" => "iso-8859-6",
        "138" => "iso-8859-8",
        "144" => "iso-8859-5",
        "148" => "iso-8859-9",
        "166" => "windows-874",
        _ => return None,
    };
    encoding_from_whatwg_label(label)
}

fn decode_with(label: &str, bytes: &[u8], out: &mut String) {
    match encoding_from_whatwg_label(label) {
        Some(enc) => match enc.decode(bytes, DecoderTrap::Replace) {
            Ok(s) => out.push_str(&s),
            Err(_) => out.push('\u{fffd}'),
        },
        None => out.push('\u{fffd}'),
    }
}

/// Decode bytes with ISO 2022 escape sequences (PS3.5 Table 6.1-2, 6.1-4).
fn decode_iso2022(bytes: &[u8], initial: Initial) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut g0 = G0::Ascii;
    let mut g1 = initial.g1;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0x1b {
            let rest = &bytes[i + 1..];
            let (len, change): (usize, Option<Designation>) = match rest {
                [b'(', b'B', ..] | [b'(', b'J', ..] => (2, Some(Designation::G0(G0::Ascii))),
                [b'$', b'B', ..] | [b'$', b'@', ..] => (2, Some(Designation::G0(G0::Jis0208))),
                [b'$', b'(', b'D', ..] => (3, Some(Designation::G0(G0::Jis0212))),
                [b')', b'I', ..] => (2, Some(Designation::G1(G1::Katakana))),
                [b'$', b')', b'C', ..] => (3, Some(Designation::G1(G1::Korean))),
                [b'$', b')', b'A', ..] => (3, Some(Designation::G1(G1::Chinese))),
                [b'-', f, ..] => {
                    let ir = match f {
                        b'A' => "100",
                        b'B' => "101",
                        b'C' => "109",
                        b'D' => "110",
                        b'F' => "126",
                        b'G' => "127",
                        b'H' => "138",
                        b'L' => "144",
                        b'M' => "148",
                        b'T' => "166",
                        _ => "",
                    };
                    (2, Some(Designation::G1(G1::Single(code_page(ir)))))
                }
                _ => (0, None),
            };
            match change {
                Some(Designation::G0(g)) => g0 = g,
                Some(Designation::G1(g)) => g1 = g,
                None => out.push('\u{fffd}'),
            }
            i += 1 + len;
            continue;
        }
        if b < 0x80 {
            if g0 != G0::Ascii && (0x21..0x7f).contains(&b) {
                let Some(&n) = bytes.get(i + 1) else {
                    out.push('\u{fffd}');
                    break;
                };
                let euc: Vec<u8> = match g0 {
                    G0::Jis0212 => vec![0x8f, b | 0x80, n | 0x80],
                    _ => vec![b | 0x80, n | 0x80],
                };
                decode_with("euc-jp", &euc, &mut out);
                i += 2;
            } else {
                out.push(char::from(b));
                i += 1;
            }
            continue;
        }
        match g1 {
            G1::Katakana => decode_with("euc-jp", &[0x8e, b], &mut out),
            G1::Single(Some(enc)) => match enc.decode(&[b], DecoderTrap::Replace) {
                Ok(s) => out.push_str(&s),
                Err(_) => out.push('\u{fffd}'),
            },
            G1::Korean | G1::Chinese => {
                let Some(&n) = bytes.get(i + 1) else {
                    out.push('\u{fffd}');
                    break;
                };
                let label = if matches!(g1, G1::Korean) { "euc-kr" } else { "gbk" };
                decode_with(label, &[b, n], &mut out);
                i += 2;
                continue;
            }
            G1::Single(None) | G1::None => out.push(char::from(b)),
        }
        i += 1;
    }
    out
}

enum Designation {
    G0(G0),
    G1(G1),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PS3.5 H.3.1: Yamada^Tarou=山田^太郎=やまだ^たろう in `\ISO 2022 IR 87`.
    pub(crate) const YAMADA_IR87: &[u8] =
        b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B";

    #[test]
    fn japanese_ir87_decodes() {
        let s = decode_iso2022(YAMADA_IR87, Initial::from_first(""));
        assert_eq!(s, "Yamada^Tarou=山田^太郎=やまだ^たろう");
    }

    #[test]
    fn korean_ir149_decodes() {
        // PS3.5 I.2: Hong^Gildong=洪^吉洞=홍^길동
        let raw = b"Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf";
        assert_eq!(
            decode_iso2022(raw, Initial::from_first("")),
            "Hong^Gildong=洪^吉洞=홍^길동"
        );
    }

    #[test]
    fn objects_with_code_extensions_are_redecoded() {
        let latin1: String = YAMADA_IR87.iter().map(|b| char::from(*b)).collect();
        let mut obj = InMemDicomObject::from_element_iter([
            DataElement::new(
                tags::SPECIFIC_CHARACTER_SET,
                VR::CS,
                PrimitiveValue::Strs(vec![String::new(), "ISO 2022 IR 87".into()].into()),
            ),
            DataElement::new(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from(latin1.as_str())),
        ]);
        redecode_text(&mut obj);
        assert_eq!(
            obj.element(tags::PATIENT_NAME).unwrap().to_str().unwrap(),
            "Yamada^Tarou=山田^太郎=やまだ^たろう"
        );
    }

    #[test]
    fn undeclared_bytes_are_read_as_iso2022_or_utf8() {
        let latin1 = |b: &[u8]| -> String { b.iter().map(|b| char::from(*b)).collect() };
        let mut obj = InMemDicomObject::from_element_iter([
            DataElement::new(
                tags::PATIENT_NAME,
                VR::PN,
                PrimitiveValue::from(latin1(YAMADA_IR87).as_str()),
            ),
            DataElement::new(
                tags::PATIENT_ID,
                VR::LO,
                PrimitiveValue::from(latin1("王^小東".as_bytes()).as_str()),
            ),
            DataElement::new(tags::STUDY_DESCRIPTION, VR::LO, PrimitiveValue::from("Müller")),
        ]);
        redecode_text(&mut obj);
        assert_eq!(
            obj.element(tags::PATIENT_NAME).unwrap().to_str().unwrap(),
            "Yamada^Tarou=山田^太郎=やまだ^たろう"
        );
        assert_eq!(obj.element(tags::PATIENT_ID).unwrap().to_str().unwrap(), "王^小東");
        // Latin-1 that is not UTF-8 stays as it was read.
        assert_eq!(
            obj.element(tags::STUDY_DESCRIPTION).unwrap().to_str().unwrap(),
            "Müller"
        );
    }

    #[test]
    fn utf8_is_left_alone() {
        let mut obj = InMemDicomObject::from_element_iter([
            DataElement::new(tags::SPECIFIC_CHARACTER_SET, VR::CS, PrimitiveValue::from("ISO_IR 192")),
            DataElement::new(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from("Müller^Jürgen")),
        ]);
        redecode_text(&mut obj);
        assert_eq!(
            obj.element(tags::PATIENT_NAME).unwrap().to_str().unwrap(),
            "Müller^Jürgen"
        );
    }
}
