//! Streaming conversion of a data set between the uncompressed transfer syntaxes
//! (Implicit VR Little Endian, Explicit VR Little Endian, Explicit VR Big Endian,
//! and Deflated Explicit VR Little Endian as a source), element by element, in
//! bounded memory whatever the size of the data set.
//!
//! Rules (PS3.5 7.1-7.5, 6.2.2):
//! - Implicit VR sources take the VR from the standard dictionary; an attribute it
//!   does not know (private, say) becomes UN, an undefined-length one a sequence;
//!   the ambiguous VRs are resolved as PS3.5 A.1 does for Implicit VR (pixel data,
//!   overlay data and LUT data OW, "US or SS" US).
//! - A value longer than 65,534 bytes whose VR has a 16-bit length field cannot be
//!   expressed in Explicit VR; it is sent as UN (PS3.5 6.2.2), with its bytes as
//!   they are. We chose this over failing the file: nothing is lost, and a
//!   receiver that knows the attribute reads it back with its own VR.
//! - Sequences and items are written with undefined length (a converted item may
//!   change size, and we never hold one to measure it). Group lengths
//!   (gggg,0000), retired in data sets and wrong after conversion, are dropped.
//! - Between byte orders, values are swapped by VR (2, 4 or 8 byte words); UN
//!   values and undefined-length UN contents (Implicit VR LE by CP-246) are kept.
//!   OW pixel data of 32- or 64-bit samples (Bits Allocated) is swapped by sample.

use std::io::{Read, Write};

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::{Tag, VR};

use crate::association::uids;

use super::dataset_check::long_length as has_long_length;
use super::instance::{is_known_vr, FileError};

/// How a data set is encoded, element by element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syntax {
    /// Explicit VR (else implicit).
    pub explicit: bool,
    /// Big endian (else little endian).
    pub big_endian: bool,
}

impl Syntax {
    /// Implicit VR Little Endian.
    pub const IMPLICIT_LE: Syntax = Syntax {
        explicit: false,
        big_endian: false,
    };
    /// Explicit VR Little Endian.
    pub const EXPLICIT_LE: Syntax = Syntax {
        explicit: true,
        big_endian: false,
    };
    /// Explicit VR Big Endian.
    pub const EXPLICIT_BE: Syntax = Syntax {
        explicit: true,
        big_endian: true,
    };

    /// The element encoding of a transfer syntax (a deflated data set is Explicit
    /// VR Little Endian once inflated; compressed syntaxes are Explicit VR LE too,
    /// apart from their encapsulated pixel data). `None` for an unknown syntax.
    pub fn of(ts: &str) -> Option<Syntax> {
        match ts {
            uids::IMPLICIT_VR_LE => Some(Syntax::IMPLICIT_LE),
            uids::EXPLICIT_VR_BE => Some(Syntax::EXPLICIT_BE),
            _ => {
                use dicom_encoding::TransferSyntaxIndex;
                dicom_transfer_syntax_registry::TransferSyntaxRegistry
                    .get(ts)
                    .map(|_| Syntax::EXPLICIT_LE)
            }
        }
    }
}

/// Inflates a raw deflate stream (RFC 1951, as Deflated Explicit VR LE stores it).
/// A stream that ends before its final block is an error, not a short data set.
pub struct Inflate<R> {
    r: std::io::BufReader<R>,
    d: flate2::Decompress,
    done: bool,
}

impl<R> std::fmt::Debug for Inflate<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflate")
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Inflate<R> {
    /// Inflate the deflate stream read from `r`.
    pub fn new(r: R) -> Self {
        Inflate {
            r: std::io::BufReader::with_capacity(64 * 1024, r),
            d: flate2::Decompress::new(false),
            done: false,
        }
    }
}

impl<R: Read> Read for Inflate<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.r.fill_buf()?;
            let eof = input.is_empty();
            let (in_before, out_before) = (self.d.total_in(), self.d.total_out());
            let flush = if eof {
                flate2::FlushDecompress::Finish
            } else {
                flate2::FlushDecompress::None
            };
            let status = self.d.decompress(input, buf, flush).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("corrupt deflate stream: {e}"))
            })?;
            let consumed = (self.d.total_in() - in_before) as usize;
            let produced = (self.d.total_out() - out_before) as usize;
            self.r.consume(consumed);
            if status == flate2::Status::StreamEnd {
                self.done = true;
                return Ok(produced);
            }
            if produced > 0 {
                return Ok(produced);
            }
            if eof {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the deflate stream is cut short",
                ));
            }
            if consumed == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "corrupt deflate stream: no progress",
                ));
            }
        }
    }
}

const UNDEFINED: u32 = 0xFFFF_FFFF;
const MAX_DEPTH: u32 = 64;
/// Bytes of a value copied at a time (a multiple of every word size).
const COPY_PIECE: usize = 64 * 1024;

/// Convert the data set read from `src` (encoded as `from`) into `to`, writing it
/// to `out`. Memory: one 64 KiB piece, whatever the size of the values.
pub fn transcode<R: Read, W: Write>(src: R, from: Syntax, to: Syntax, out: W) -> Result<(), FileError> {
    let mut t = Transcoder {
        r: CountingReader {
            r: std::io::BufReader::with_capacity(64 * 1024, src),
            pos: 0,
        },
        w: out,
        piece: vec![0u8; COPY_PIECE],
        bits_allocated: None,
    };
    t.data_set(from, to, End::Eof, 0)?;
    t.w.flush().map_err(write_error)?;
    Ok(())
}

fn write_error(e: std::io::Error) -> FileError {
    FileError::Io(e)
}

struct CountingReader<R> {
    r: std::io::BufReader<R>,
    pos: u64,
}

impl<R: Read> CountingReader<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), FileError> {
        self.r.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                FileError::Truncated(format!("the data set ends inside an element at byte {}", self.pos))
            }
            _ => FileError::Io(e),
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn at_eof(&mut self) -> Result<bool, FileError> {
        use std::io::BufRead;
        Ok(self.r.fill_buf()?.is_empty())
    }
}

#[derive(Clone, Copy)]
enum End {
    /// The top level: until the source ends.
    Eof,
    /// An undefined-length item: until its delimiter.
    Delimiter,
    /// A defined-length item: until this source position.
    At(u64),
}

struct Transcoder<R, W> {
    r: CountingReader<R>,
    w: W,
    piece: Vec<u8>,
    /// Bits Allocated (0028,0100) of the top level: OW pixel data of 32 or 64 bit
    /// samples is swapped by sample, not by 16-bit word.
    bits_allocated: Option<u16>,
}

fn u16_of(b: [u8; 2], be: bool) -> u16 {
    if be {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    }
}

fn u32_of(b: [u8; 4], be: bool) -> u32 {
    if be {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// Size of the words to swap between byte orders (1: none).
fn word_size(vr: VR) -> usize {
    match vr {
        VR::US | VR::SS | VR::OW | VR::AT => 2,
        VR::UL | VR::SL | VR::FL | VR::OF | VR::OL => 4,
        VR::FD | VR::OD | VR::SV | VR::UV | VR::OV => 8,
        _ => 1,
    }
}

/// The VR of an attribute in an Implicit VR data set.
fn dictionary_vr(tag: (u16, u16)) -> VR {
    // Private creator elements (gggg,0010-00FF) are LO (PS3.5 7.8.1).
    if tag.0 % 2 == 1 {
        return if (0x0010..=0x00FF).contains(&tag.1) {
            VR::LO
        } else {
            VR::UN
        };
    }
    match dicom_dictionary_std::StandardDataDictionary.by_tag(Tag(tag.0, tag.1)) {
        Some(entry) => match entry.vr() {
            VirtualVr::Exact(vr) => vr,
            VirtualVr::Xs => VR::US,
            VirtualVr::Ox | VirtualVr::Px | VirtualVr::Lt => VR::OW,
            #[allow(unreachable_patterns)]
            _ => VR::UN,
        },
        None => VR::UN,
    }
}

impl<R: Read, W: Write> Transcoder<R, W> {
    fn read<const N: usize>(&mut self) -> Result<[u8; N], FileError> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b)?;
        Ok(b)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), FileError> {
        self.w.write_all(bytes).map_err(write_error)
    }

    fn put_tag(&mut self, tag: (u16, u16), to: Syntax) -> Result<(), FileError> {
        let b = if to.big_endian {
            let (g, e) = (tag.0.to_be_bytes(), tag.1.to_be_bytes());
            [g[0], g[1], e[0], e[1]]
        } else {
            let (g, e) = (tag.0.to_le_bytes(), tag.1.to_le_bytes());
            [g[0], g[1], e[0], e[1]]
        };
        self.put(&b)
    }

    fn put_u32(&mut self, v: u32, to: Syntax) -> Result<(), FileError> {
        let b = if to.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.put(&b)
    }

    /// An element header in `to`.
    fn put_header(&mut self, tag: (u16, u16), vr: VR, len: u32, to: Syntax) -> Result<(), FileError> {
        self.put_tag(tag, to)?;
        if !to.explicit {
            return self.put_u32(len, to);
        }
        self.put(vr.to_string().as_bytes())?;
        if has_long_length(vr) {
            self.put(&[0, 0])?;
            self.put_u32(len, to)
        } else {
            let l = len as u16;
            let b = if to.big_endian {
                l.to_be_bytes()
            } else {
                l.to_le_bytes()
            };
            self.put(&b)
        }
    }

    fn data_set(&mut self, from: Syntax, to: Syntax, end: End, depth: u32) -> Result<(), FileError> {
        if depth > MAX_DEPTH {
            return Err(FileError::Truncated("sequences nested too deep".into()));
        }
        loop {
            match end {
                End::Eof if self.r.at_eof()? => return Ok(()),
                End::At(e) if self.r.pos >= e => return Ok(()),
                _ => {}
            }
            let t = self.read::<4>()?;
            let tag = (
                u16_of([t[0], t[1]], from.big_endian),
                u16_of([t[2], t[3]], from.big_endian),
            );
            if tag == (0xFFFE, 0xE00D) {
                self.read::<4>()?;
                return match end {
                    End::Delimiter => Ok(()),
                    _ => Err(FileError::Truncated(format!(
                        "unexpected item delimiter at byte {}",
                        self.r.pos - 8
                    ))),
                };
            }
            let (vr, len) = if from.explicit {
                let v = self.read::<2>()?;
                if !is_known_vr(v) {
                    return Err(FileError::Truncated(format!(
                        "element ({:04X},{:04X}) has no valid VR",
                        tag.0, tag.1
                    )));
                }
                let vr = std::str::from_utf8(&v)
                    .ok()
                    .and_then(|s| s.parse::<VR>().ok())
                    .unwrap_or(VR::UN);
                if has_long_length(vr) {
                    self.read::<2>()?;
                    (vr, u32_of(self.read::<4>()?, from.big_endian))
                } else {
                    (vr, u16_of(self.read::<2>()?, from.big_endian) as u32)
                }
            } else {
                let len = u32_of(self.read::<4>()?, from.big_endian);
                (dictionary_vr(tag), len)
            };
            self.element(tag, vr, len, from, to, depth)?;
        }
    }

    fn element(
        &mut self,
        tag: (u16, u16),
        vr: VR,
        len: u32,
        from: Syntax,
        to: Syntax,
        depth: u32,
    ) -> Result<(), FileError> {
        // Group lengths would be wrong after conversion, and are retired: drop them.
        if tag.1 == 0x0000 && len != UNDEFINED {
            return self.skip(len as u64);
        }
        if len == UNDEFINED {
            return match vr {
                // Undefined-length UN: an Implicit VR LE sequence inside (CP-246),
                // kept as it is.
                VR::UN if from.explicit => {
                    let out_vr = if to.explicit { VR::UN } else { VR::SQ };
                    self.put_header(tag, out_vr, UNDEFINED, to)?;
                    let inner_to = if to.explicit { Syntax::IMPLICIT_LE } else { to };
                    self.items(Syntax::IMPLICIT_LE, inner_to, None, depth + 1)
                }
                // Encapsulated fragments (OB/OW): copied item by item.
                VR::OB | VR::OW if from.explicit => {
                    self.put_header(tag, vr, UNDEFINED, to)?;
                    self.fragments(from, to)
                }
                // SQ, or an attribute the dictionary does not know in Implicit VR.
                _ => {
                    self.put_header(tag, VR::SQ, UNDEFINED, to)?;
                    self.items(from, to, None, depth + 1)
                }
            };
        }
        if vr == VR::SQ {
            self.put_header(tag, VR::SQ, UNDEFINED, to)?;
            let end = self.r.pos + len as u64;
            return self.items(from, to, Some(end), depth + 1);
        }
        let out_vr = if to.explicit && !has_long_length(vr) && len > 0xFFFF {
            VR::UN
        } else {
            vr
        };
        self.put_header(tag, out_vr, len, to)?;
        if depth == 0 && tag == (0x0028, 0x0100) && len == 2 {
            let v = u16_of(self.read::<2>()?, from.big_endian);
            self.bits_allocated = Some(v);
            let b = if to.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            return self.put(&b);
        }
        let mut swap = if from.big_endian != to.big_endian {
            word_size(vr)
        } else {
            1
        };
        if swap == 2 && depth == 0 && tag == (0x7FE0, 0x0010) {
            if let Some(bits @ (32 | 64)) = self.bits_allocated {
                swap = bits as usize / 8;
            }
        }
        self.copy(len as u64, swap)
    }

    /// Items of a sequence, up to its delimiter (`end` None) or its defined end.
    fn items(&mut self, from: Syntax, to: Syntax, end: Option<u64>, depth: u32) -> Result<(), FileError> {
        loop {
            if let Some(e) = end {
                if self.r.pos >= e {
                    break;
                }
            }
            let t = self.read::<4>()?;
            let tag = (
                u16_of([t[0], t[1]], from.big_endian),
                u16_of([t[2], t[3]], from.big_endian),
            );
            let len = u32_of(self.read::<4>()?, from.big_endian);
            match tag {
                (0xFFFE, 0xE0DD) if end.is_none() => break,
                (0xFFFE, 0xE000) => {
                    self.put_tag((0xFFFE, 0xE000), to)?;
                    self.put_u32(UNDEFINED, to)?;
                    let item_end = if len == UNDEFINED {
                        End::Delimiter
                    } else {
                        End::At(self.r.pos + len as u64)
                    };
                    self.data_set(from, to, item_end, depth)?;
                    self.put_tag((0xFFFE, 0xE00D), to)?;
                    self.put_u32(0, to)?;
                }
                _ => {
                    return Err(FileError::Truncated(format!(
                        "expected an item, found ({:04X},{:04X}) at byte {}",
                        tag.0,
                        tag.1,
                        self.r.pos - 8
                    )))
                }
            }
        }
        self.put_tag((0xFFFE, 0xE0DD), to)?;
        self.put_u32(0, to)
    }

    /// Encapsulated pixel data: items of bytes up to the sequence delimiter.
    fn fragments(&mut self, from: Syntax, to: Syntax) -> Result<(), FileError> {
        loop {
            let t = self.read::<4>()?;
            let tag = (
                u16_of([t[0], t[1]], from.big_endian),
                u16_of([t[2], t[3]], from.big_endian),
            );
            let len = u32_of(self.read::<4>()?, from.big_endian);
            self.put_tag(tag, to)?;
            self.put_u32(len, to)?;
            match tag {
                (0xFFFE, 0xE0DD) => return Ok(()),
                (0xFFFE, 0xE000) if len != UNDEFINED => self.copy(len as u64, 1)?,
                _ => {
                    return Err(FileError::Truncated(format!(
                        "expected a fragment, found ({:04X},{:04X})",
                        tag.0, tag.1
                    )))
                }
            }
        }
    }

    fn skip(&mut self, len: u64) -> Result<(), FileError> {
        let n = std::io::copy(&mut (&mut self.r.r).take(len), &mut std::io::sink())?;
        self.r.pos += n;
        if n < len {
            return Err(FileError::Truncated(format!(
                "the data set ends inside a value at byte {}",
                self.r.pos
            )));
        }
        Ok(())
    }

    /// Copy `len` bytes of a value, swapping `swap`-byte words.
    fn copy(&mut self, len: u64, swap: usize) -> Result<(), FileError> {
        let mut left = len;
        let mut piece = std::mem::take(&mut self.piece);
        let res = (|| {
            while left > 0 {
                let n = left.min(piece.len() as u64) as usize;
                self.r.read_exact(&mut piece[..n])?;
                if swap > 1 {
                    for w in piece[..n - n % swap].chunks_exact_mut(swap) {
                        w.reverse();
                    }
                }
                self.put(&piece[..n])?;
                left -= n as u64;
            }
            Ok(())
        })();
        self.piece = piece;
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el_explicit_le(tag: (u16, u16), vr: &str, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&tag.0.to_le_bytes());
        v.extend_from_slice(&tag.1.to_le_bytes());
        v.extend_from_slice(vr.as_bytes());
        if has_long_length(vr.parse().unwrap()) {
            v.extend_from_slice(&[0, 0]);
            v.extend_from_slice(&(value.len() as u32).to_le_bytes());
        } else {
            v.extend_from_slice(&(value.len() as u16).to_le_bytes());
        }
        v.extend_from_slice(value);
        v
    }

    fn el_implicit(tag: (u16, u16), value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&tag.0.to_le_bytes());
        v.extend_from_slice(&tag.1.to_le_bytes());
        v.extend_from_slice(&(value.len() as u32).to_le_bytes());
        v.extend_from_slice(value);
        v
    }

    fn run(src: &[u8], from: Syntax, to: Syntax) -> Vec<u8> {
        let mut out = Vec::new();
        transcode(src, from, to, &mut out).unwrap();
        out
    }

    #[test]
    fn implicit_to_explicit_takes_vrs_from_the_dictionary() {
        let mut src = el_implicit((0x0008, 0x0016), b"1.2.840.10008.5.1.4.1.1.7\0");
        src.extend(el_implicit((0x0028, 0x0010), &512u16.to_le_bytes()));
        src.extend(el_implicit((0x0009, 0x0010), b"ACME"));
        src.extend(el_implicit((0x0009, 0x1001), &[1, 2, 3, 4]));
        let out = run(&src, Syntax::IMPLICIT_LE, Syntax::EXPLICIT_LE);
        let mut want = el_explicit_le((0x0008, 0x0016), "UI", b"1.2.840.10008.5.1.4.1.1.7\0");
        want.extend(el_explicit_le((0x0028, 0x0010), "US", &512u16.to_le_bytes()));
        want.extend(el_explicit_le((0x0009, 0x0010), "LO", b"ACME"));
        want.extend(el_explicit_le((0x0009, 0x1001), "UN", &[1, 2, 3, 4]));
        assert_eq!(out, want);
        // And back: the same bytes as the source.
        assert_eq!(run(&out, Syntax::EXPLICIT_LE, Syntax::IMPLICIT_LE), src);
    }

    #[test]
    fn a_long_short_length_value_becomes_un() {
        let long = vec![b'A'; 70_000];
        let src = el_implicit((0x0008, 0x103E), &long);
        let out = run(&src, Syntax::IMPLICIT_LE, Syntax::EXPLICIT_LE);
        assert_eq!(&out[4..6], b"UN");
        assert_eq!(u32::from_le_bytes([out[8], out[9], out[10], out[11]]), 70_000);
        assert_eq!(out.len(), 12 + 70_000);
    }

    #[test]
    fn big_endian_values_are_swapped_by_vr() {
        let mut src = Vec::new();
        // (0028,0010) US 512 in Explicit VR BE.
        src.extend_from_slice(&[0x00, 0x28, 0x00, 0x10, b'U', b'S', 0x00, 0x02, 0x02, 0x00]);
        let out = run(&src, Syntax::EXPLICIT_BE, Syntax::EXPLICIT_LE);
        assert_eq!(out, el_explicit_le((0x0028, 0x0010), "US", &512u16.to_le_bytes()));
        assert_eq!(run(&out, Syntax::EXPLICIT_LE, Syntax::EXPLICIT_BE), src);
    }

    #[test]
    fn defined_length_sequences_become_undefined_and_convert_inside() {
        let item_content = el_implicit((0x0008, 0x1150), b"1.2.3\0");
        let mut item = vec![0xFE, 0xFF, 0x00, 0xE0];
        item.extend_from_slice(&(item_content.len() as u32).to_le_bytes());
        item.extend(&item_content);
        let src = el_implicit((0x0008, 0x1140), &item);
        let out = run(&src, Syntax::IMPLICIT_LE, Syntax::EXPLICIT_LE);
        let mut want = vec![0x08, 0x00, 0x40, 0x11, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        want.extend_from_slice(&[0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]);
        want.extend(el_explicit_le((0x0008, 0x1150), "UI", b"1.2.3\0"));
        want.extend_from_slice(&[0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        want.extend_from_slice(&[0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        assert_eq!(out, want);
    }

    #[test]
    fn a_cut_value_is_an_error_not_a_short_data_set() {
        let mut src = el_implicit((0x0010, 0x0010), b"DOE^JOHN");
        src.truncate(src.len() - 3);
        let err = transcode(&src[..], Syntax::IMPLICIT_LE, Syntax::EXPLICIT_LE, Vec::new()).unwrap_err();
        assert!(err.to_string().contains("ends inside"), "{err}");
        assert!(!err.to_string().contains("DOE"), "{err}");
    }
}
