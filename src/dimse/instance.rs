//! DICOM Part 10 files as C-STORE sees them: the file meta group (transfer syntax),
//! where the data set starts, and one structural walk of the data set that checks
//! every element header against the transfer syntax without reading values (so a
//! truncated or mis-encoded file is refused before anything is sent, and a 1 GiB
//! file costs no memory) and reads the data set's own SOP Class and Instance UIDs,
//! which are what the C-STORE command carries (as DCMTK's storescu and pynetdicom
//! do): a receiving SCP checks the data set, not the file meta.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::association::uids;

/// Why a file cannot be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    #[error("cannot read file: {0}")]
    /// The file could not be read.
    Io(#[from] std::io::Error),
    #[error("not a DICOM file: no DICM preamble or meta group")]
    /// No DICM preamble or file meta group.
    NotDicom,
    #[error("invalid file meta group: {0}")]
    /// The file meta group is invalid.
    BadMeta(String),
    #[error("truncated or corrupt DICOM file: {0}")]
    /// The file is truncated or corrupt.
    Truncated(String),
    #[error("cannot convert the data set to {to}: {reason}")]
    /// The data set could not be converted to an accepted transfer syntax.
    Convert {
        /// The transfer syntax UID aimed at.
        to: String,
        /// Why not.
        reason: String,
    },
    #[error("the data set has no {0}: it cannot be stored")]
    /// A required UID (named) is missing from the data set.
    MissingUid(&'static str),
    /// A DICOMDIR (Media Storage Directory Storage in the file meta): an index of a
    /// medium, not an instance to store.
    #[error("a DICOMDIR (Media Storage Directory), not an instance")]
    MediaDirectory,
    #[error("the data set does not match its transfer syntax {ts}: {reason}")]
    /// The data set does not match its transfer syntax.
    WrongSyntax {
        /// The transfer syntax UID of the file meta.
        ts: String,
        /// What does not match.
        reason: String,
    },
}

/// What C-STORE needs to know about a file, without loading its data set.
#[derive(Debug, Clone)]
pub struct InstanceFile {
    /// The file.
    pub path: PathBuf,
    /// SOP Class UID (0008,0016) of the data set.
    pub sop_class_uid: String,
    /// SOP Instance UID (0008,0018) of the data set.
    pub sop_instance_uid: String,
    /// Transfer Syntax UID (0002,0010) of the file meta.
    pub transfer_syntax: String,
    /// Set when the file meta's Media Storage SOP Class / Instance UID
    /// (0002,0002)/(0002,0003) differ from the data set's: the data set's are sent.
    pub meta_mismatch: Option<String>,
    /// Byte offset of the data set (just after the meta group).
    pub data_offset: u64,
    /// Size of the file (bytes).
    pub file_size: u64,
    /// The data set itself, for small files: read while the file was checked, so
    /// C-STORE sends it without opening and reading the file a second time.
    inline: Option<std::sync::Arc<[u8]>>,
}

/// Data sets up to this size are kept in memory by [`InstanceFile::open`].
pub const INLINE_MAX: u64 = 1 << 20;

impl InstanceFile {
    /// The data set's bytes, when the file was small enough to keep them.
    pub fn inline_data(&self) -> Option<&[u8]> {
        self.inline.as_deref()
    }

    /// Bytes of the data set as stored.
    pub fn data_len(&self) -> u64 {
        self.file_size.saturating_sub(self.data_offset)
    }

    /// A data set held in memory (the embedded SCP's memory mode), to be sent as a
    /// file's would be; `path` is empty.
    pub fn in_memory(
        sop_class_uid: &str,
        sop_instance_uid: &str,
        transfer_syntax: &str,
        data: Vec<u8>,
    ) -> InstanceFile {
        InstanceFile {
            path: PathBuf::new(),
            sop_class_uid: sop_class_uid.to_string(),
            sop_instance_uid: sop_instance_uid.to_string(),
            transfer_syntax: transfer_syntax.to_string(),
            meta_mismatch: None,
            data_offset: 0,
            file_size: data.len() as u64,
            inline: Some(data.into()),
        }
    }

    /// Read the meta group and check the data set's structure (blocking I/O).
    pub fn open(path: &Path) -> Result<InstanceFile, FileError> {
        let file = File::open(path)?;
        let file_size = file.metadata()?.len();
        let mut r = PosReader {
            r: BufReader::with_capacity(64 * 1024, file),
            pos: 0,
        };
        let mut preamble = [0u8; 132];
        if file_size < 132 {
            return Err(FileError::NotDicom);
        }
        r.read_exact(&mut preamble)?;
        if &preamble[128..132] != b"DICM" {
            return Err(FileError::NotDicom);
        }
        let meta = read_meta(&mut r, file_size)?;
        let data_offset = r.stream_position()?;
        let transfer_syntax = meta
            .transfer_syntax
            .filter(|ts| !ts.is_empty())
            .ok_or_else(|| FileError::BadMeta("no Transfer Syntax UID (0002,0010)".into()))?;
        if meta.sop_class.as_deref() == Some(uids::MEDIA_STORAGE_DIRECTORY) {
            return Err(FileError::MediaDirectory);
        }
        if file_size <= data_offset {
            return Err(FileError::Truncated("no data set after the meta group".into()));
        }
        let walk = walk_data_set(&mut r, data_offset, file_size, &transfer_syntax)?;
        let sop_class_uid = walk
            .sop_class
            .ok_or(FileError::MissingUid("SOP Class UID (0008,0016)"))?;
        let sop_instance_uid = walk
            .sop_instance
            .ok_or(FileError::MissingUid("SOP Instance UID (0008,0018)"))?;
        let meta_mismatch = mismatch_note(
            (meta.sop_class.as_deref(), &sop_class_uid),
            (meta.sop_instance.as_deref(), &sop_instance_uid),
        );
        let mut inst = InstanceFile {
            path: path.to_path_buf(),
            sop_class_uid,
            sop_instance_uid,
            transfer_syntax,
            meta_mismatch,
            data_offset,
            file_size,
            inline: None,
        };
        if inst.data_len() <= INLINE_MAX {
            // Usually still in the reader's buffer: no further system call.
            r.seek(SeekFrom::Start(data_offset))?;
            let mut data = vec![0u8; inst.data_len() as usize];
            r.read_exact(&mut data)?;
            inst.inline = Some(data.into());
        }
        Ok(inst)
    }

    /// The data set as stored, from its first byte (blocking I/O): the inline copy
    /// or the file.
    pub fn data_reader(&self) -> Result<Box<dyn Read + Send>, FileError> {
        if let Some(data) = &self.inline {
            return Ok(Box::new(std::io::Cursor::new(data.clone())));
        }
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.data_offset))?;
        Ok(Box::new(BufReader::with_capacity(256 * 1024, f).take(self.data_len())))
    }
}

/// A buffered reader that knows its position, so that skipping a value that is
/// already buffered and asking where it is cost no system call (`BufReader::seek`
/// drops its buffer, and its `stream_position` asks the kernel): a small file is
/// read once, not once per element.
struct PosReader {
    r: BufReader<File>,
    pos: u64,
}

impl Read for PosReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.r.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for PosReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::Current(d) => self.pos.checked_add_signed(d).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start of the file")
            })?,
            SeekFrom::End(_) => {
                self.pos = self.r.seek(to)?;
                return Ok(self.pos);
            }
        };
        let delta = i64::try_from(target as i128 - self.pos as i128)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek too far"))?;
        self.r.seek_relative(delta)?;
        self.pos = target;
        Ok(target)
    }

    fn stream_position(&mut self) -> std::io::Result<u64> {
        Ok(self.pos)
    }
}

#[derive(Default)]
struct Meta {
    sop_class: Option<String>,
    sop_instance: Option<String>,
    transfer_syntax: Option<String>,
}

/// Group 0002 is always Explicit VR Little Endian. Read element by element until the
/// group ends, rather than trusting (0002,0000): real-world files get it wrong.
fn read_meta<R: Read + Seek>(r: &mut R, file_size: u64) -> Result<Meta, FileError> {
    let mut meta = Meta::default();
    let mut seen_any = false;
    loop {
        let pos = r.stream_position()?;
        if pos + 8 > file_size {
            break;
        }
        let mut hdr = [0u8; 8];
        r.read_exact(&mut hdr)?;
        let group = u16::from_le_bytes([hdr[0], hdr[1]]);
        if group != 0x0002 {
            r.seek(SeekFrom::Start(pos))?;
            break;
        }
        seen_any = true;
        let element = u16::from_le_bytes([hdr[2], hdr[3]]);
        let vr = [hdr[4], hdr[5]];
        let len = if has_long_length(vr) {
            let mut l = [0u8; 4];
            r.read_exact(&mut l)
                .map_err(|_| FileError::BadMeta("truncated meta element".into()))?;
            u32::from_le_bytes(l) as u64
        } else {
            u16::from_le_bytes([hdr[6], hdr[7]]) as u64
        };
        let here = r.stream_position()?;
        if len == 0xFFFF_FFFF || here + len > file_size || len > 1 << 20 {
            return Err(FileError::BadMeta(format!(
                "element (0002,{element:04X}) has an impossible length {len}"
            )));
        }
        let want = matches!(element, 0x0002 | 0x0003 | 0x0010);
        if want {
            let mut v = vec![0u8; len as usize];
            r.read_exact(&mut v)?;
            let s = String::from_utf8_lossy(&v)
                .trim_end_matches(['\0', ' '])
                .trim()
                .to_string();
            match element {
                0x0002 => meta.sop_class = Some(s),
                0x0003 => meta.sop_instance = Some(s),
                _ => meta.transfer_syntax = Some(s),
            }
        } else {
            r.seek(SeekFrom::Current(len as i64))?;
        }
    }
    if !seen_any {
        return Err(FileError::NotDicom);
    }
    Ok(meta)
}

fn has_long_length(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN" | b"UR" | b"UT" | b"UV"
    )
}

/// What the structural walk learnt.
#[derive(Debug, Default)]
struct Walk {
    sop_class: Option<String>,
    sop_instance: Option<String>,
}

/// "file meta says SOP Instance UID 1.2.3, the data set 1.2.4: sent the data set's".
fn mismatch_note(class: (Option<&str>, &str), instance: (Option<&str>, &str)) -> Option<String> {
    let mut parts = Vec::new();
    for (name, (meta, data)) in [("SOP Class UID", class), ("SOP Instance UID", instance)] {
        if let Some(meta) = meta.filter(|m| !m.is_empty() && *m != data) {
            parts.push(format!("{name} {meta} in the file meta, {data} in the data set"));
        }
    }
    (!parts.is_empty()).then(|| {
        format!(
            "file meta disagrees with the data set ({}); sent the data set's",
            parts.join("; ")
        )
    })
}

/// Walk the data set at `data_offset` in `ts` (inflating a deflated one).
fn walk_data_set(r: &mut PosReader, data_offset: u64, file_size: u64, ts: &str) -> Result<Walk, FileError> {
    let syntax = Syntax::of(ts).unwrap_or(Syntax::EXPLICIT_LE);
    if ts == uids::DEFLATED_EXPLICIT_VR_LE {
        r.seek(SeekFrom::Start(data_offset))?;
        let inflated = crate::dimse::transcode::Inflate::new(r.by_ref().take(file_size - data_offset));
        let mut src = StreamSource {
            r: std::io::BufReader::with_capacity(64 * 1024, inflated),
            pos: 0,
        };
        let mut scanner = Scanner::new(&mut src, syntax, ts);
        scanner.elements(None, 0)?;
        return Ok(scanner.walk);
    }
    let mut src = FileSource {
        r,
        pos: data_offset,
        size: file_size,
    };
    let mut scanner = Scanner::new(&mut src, syntax, ts);
    scanner.elements(None, 0)?;
    Ok(scanner.walk)
}

const UNDEFINED: u32 = 0xFFFF_FFFF;
const MAX_DEPTH: u32 = 64;
/// A SOP Class or Instance UID longer than this is not read as one.
const MAX_UID_BYTES: u32 = 128;

use crate::dimse::transcode::Syntax;

/// Where the walk reads from: a file (values skipped by seeking) or an inflated
/// stream (values skipped by reading).
trait Source {
    fn pos(&self) -> u64;
    /// Exactly `buf.len()` bytes; the end of the data set inside them is truncation.
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), FileError>;
    fn skip(&mut self, len: u64, tag: (u16, u16)) -> Result<(), FileError>;
    /// At the end of the data set (between elements).
    fn at_end(&mut self) -> Result<bool, FileError>;
}

fn cut_value(tag: (u16, u16), len: u64, pos: u64, left: Option<u64>) -> FileError {
    let left = left.map(|l| format!(", but the data set has {l}")).unwrap_or_default();
    FileError::Truncated(format!(
        "element ({:04X},{:04X}) needs {len} bytes at offset {pos}{left}",
        tag.0, tag.1
    ))
}

struct FileSource<'a> {
    r: &'a mut PosReader,
    pos: u64,
    size: u64,
}

impl Source for FileSource<'_> {
    fn pos(&self) -> u64 {
        self.pos
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), FileError> {
        if self.pos + buf.len() as u64 > self.size {
            return Err(FileError::Truncated(format!(
                "file ends inside an element header at byte {}",
                self.pos
            )));
        }
        self.r.read_exact(buf)?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn skip(&mut self, len: u64, tag: (u16, u16)) -> Result<(), FileError> {
        if self.pos + len > self.size {
            return Err(cut_value(tag, len, self.pos, Some(self.size - self.pos)));
        }
        self.r.seek(SeekFrom::Current(len as i64))?;
        self.pos += len;
        Ok(())
    }

    fn at_end(&mut self) -> Result<bool, FileError> {
        Ok(self.pos >= self.size)
    }
}

struct StreamSource<R> {
    r: std::io::BufReader<R>,
    pos: u64,
}

impl<R: Read> Source for StreamSource<R> {
    fn pos(&self) -> u64 {
        self.pos
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), FileError> {
        self.r.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FileError::Truncated(format!(
                "the data set ends inside an element header at byte {}",
                self.pos
            )),
            _ => FileError::Truncated(format!("cannot inflate the data set: {e}")),
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn skip(&mut self, len: u64, tag: (u16, u16)) -> Result<(), FileError> {
        let n = std::io::copy(&mut self.r.by_ref().take(len), &mut std::io::sink())
            .map_err(|e| FileError::Truncated(format!("cannot inflate the data set: {e}")))?;
        if n < len {
            return Err(cut_value(tag, len, self.pos, Some(n)));
        }
        self.pos += len;
        Ok(())
    }

    fn at_end(&mut self) -> Result<bool, FileError> {
        use std::io::BufRead;
        let buf = self
            .r
            .fill_buf()
            .map_err(|e| FileError::Truncated(format!("cannot inflate the data set: {e}")))?;
        Ok(buf.is_empty())
    }
}

/// The value representations of PS3.5 6.2: an explicit VR data set with anything
/// else in a VR field is not in the syntax it claims (an implicit VR body under an
/// explicit VR transfer syntax, say).
pub(crate) fn is_known_vr(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FD"
            | b"FL"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SQ"
            | b"SS"
            | b"ST"
            | b"SV"
            | b"TM"
            | b"UC"
            | b"UI"
            | b"UL"
            | b"UN"
            | b"UR"
            | b"US"
            | b"UT"
            | b"UV"
    )
}

/// Walks element headers, skipping values, and reads the two SOP UIDs.
struct Scanner<'a, S> {
    src: &'a mut S,
    explicit: bool,
    big_endian: bool,
    ts: &'a str,
    walk: Walk,
}

impl<'a, S: Source> Scanner<'a, S> {
    fn new(src: &'a mut S, syntax: Syntax, ts: &'a str) -> Self {
        Scanner {
            src,
            explicit: syntax.explicit,
            big_endian: syntax.big_endian,
            ts,
            walk: Walk::default(),
        }
    }

    fn truncated<T>(&self, what: String) -> Result<T, FileError> {
        Err(FileError::Truncated(what))
    }

    fn read<const N: usize>(&mut self) -> Result<[u8; N], FileError> {
        let mut b = [0u8; N];
        self.src.read_exact(&mut b)?;
        Ok(b)
    }

    fn u16(&self, b: [u8; 2]) -> u16 {
        if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32(&self, b: [u8; 4]) -> u32 {
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    fn tag(&mut self) -> Result<(u16, u16), FileError> {
        let b = self.read::<4>()?;
        Ok((self.u16([b[0], b[1]]), self.u16([b[2], b[3]])))
    }

    /// A top-level SOP UID: read instead of skipped.
    fn read_uid(&mut self, tag: (u16, u16), len: u32) -> Result<(), FileError> {
        let mut v = vec![0u8; len as usize];
        self.src
            .read_exact(&mut v)
            .map_err(|_| cut_value(tag, len as u64, self.src.pos(), None))?;
        let uid = String::from_utf8_lossy(&v)
            .trim_end_matches(['\0', ' '])
            .trim()
            .to_string();
        if !uid.is_empty() {
            if tag.1 == 0x0016 {
                self.walk.sop_class = Some(uid);
            } else {
                self.walk.sop_instance = Some(uid);
            }
        }
        Ok(())
    }

    /// Elements until `end` (a defined-length item), an item delimiter (undefined
    /// length item, `end` None and depth > 0), or the end of the data set (depth 0).
    fn elements(&mut self, end: Option<u64>, depth: u32) -> Result<(), FileError> {
        if depth > MAX_DEPTH {
            return self.truncated("sequences nested too deep".into());
        }
        loop {
            match end {
                Some(e) if self.src.pos() >= e => return Ok(()),
                None if depth == 0 && self.src.at_end()? => return Ok(()),
                _ => {}
            }
            let tag = self.tag()?;
            if tag == (0xFFFE, 0xE00D) {
                self.read::<4>()?;
                return if depth > 0 && end.is_none() {
                    Ok(())
                } else {
                    self.truncated(format!("unexpected item delimiter at byte {}", self.src.pos() - 8))
                };
            }
            let (len, undefined_is_sequence, items_implicit) = if self.explicit && tag.0 != 0xFFFE {
                let vr = self.read::<2>()?;
                if !is_known_vr(vr) {
                    return Err(FileError::WrongSyntax {
                        ts: uids::transfer_syntax_name(self.ts),
                        reason: format!(
                            "element ({:04X},{:04X}) at byte {} has no valid VR (found bytes {:02X} {:02X})",
                            tag.0,
                            tag.1,
                            self.src.pos() - 6,
                            vr[0],
                            vr[1]
                        ),
                    });
                }
                if has_long_length(vr) {
                    self.read::<2>()?;
                    let l = self.read::<4>()?;
                    // Undefined-length UN is encoded as Implicit VR LE inside (CP-246).
                    (self.u32(l), true, &vr == b"UN")
                } else {
                    let l = self.read::<2>()?;
                    (self.u16(l) as u32, false, false)
                }
            } else {
                let l = self.read::<4>()?;
                (self.u32(l), true, false)
            };
            if len == UNDEFINED {
                if !undefined_is_sequence {
                    return self.truncated(format!(
                        "undefined length on short element ({:04X},{:04X})",
                        tag.0, tag.1
                    ));
                }
                let saved = (self.explicit, self.big_endian);
                if items_implicit {
                    self.explicit = false;
                    self.big_endian = false;
                }
                let res = self.items(depth + 1);
                (self.explicit, self.big_endian) = saved;
                res?;
            } else if depth == 0 && tag.0 == 0x0008 && matches!(tag.1, 0x0016 | 0x0018) && len <= MAX_UID_BYTES {
                self.read_uid(tag, len)?;
            } else {
                self.src.skip(len as u64, tag)?;
            }
        }
    }

    /// Items of an undefined-length sequence (or encapsulated pixel data fragments)
    /// up to the sequence delimiter.
    fn items(&mut self, depth: u32) -> Result<(), FileError> {
        loop {
            let tag = self.tag()?;
            let l = self.read::<4>()?;
            let len = self.u32(l);
            match tag {
                (0xFFFE, 0xE0DD) => return Ok(()),
                (0xFFFE, 0xE000) if len == UNDEFINED => self.elements(None, depth)?,
                (0xFFFE, 0xE000) => self.src.skip(len as u64, tag)?,
                _ => {
                    return self.truncated(format!(
                        "expected an item, found ({:04X},{:04X}) at byte {}",
                        tag.0,
                        tag.1,
                        self.src.pos() - 8
                    ))
                }
            }
        }
    }
}

/// Read a file's meta group and check its structure, on the blocking pool.
pub async fn open_instance(path: &Path) -> Result<InstanceFile, FileError> {
    let owned = path.to_path_buf();
    match tokio::task::spawn_blocking(move || InstanceFile::open(&owned)).await {
        Ok(r) => r,
        Err(e) => Err(FileError::Io(std::io::Error::other(e.to_string()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic xorshift, so failures reproduce.
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    fn meta(ts: &str) -> Vec<u8> {
        let mut v = vec![0u8; 128];
        v.extend_from_slice(b"DICM");
        for (elem, value) in [(0x0002u16, "1.2.3"), (0x0003, "4.5.6"), (0x0010, ts)] {
            let mut val = value.as_bytes().to_vec();
            if val.len() % 2 == 1 {
                val.push(0);
            }
            v.extend_from_slice(&2u16.to_le_bytes());
            v.extend_from_slice(&elem.to_le_bytes());
            v.extend_from_slice(b"UI");
            v.extend_from_slice(&(val.len() as u16).to_le_bytes());
            v.extend_from_slice(&val);
        }
        v
    }

    #[test]
    fn random_data_sets_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.dcm");
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let (mut truncated, mut wrong_syntax, mut other) = (0, 0, 0);
        for ts in [uids::EXPLICIT_VR_LE, uids::IMPLICIT_VR_LE, uids::EXPLICIT_VR_BE] {
            for round in 0..300 {
                let mut bytes = meta(ts);
                let n = (rng(&mut seed) % 512) as usize;
                for _ in 0..n {
                    // Bias towards structure: sequence/item tags and undefined lengths.
                    let b = match rng(&mut seed) % 8 {
                        0 => 0xFF,
                        1 => 0xFE,
                        2 => 0xE0,
                        _ => (rng(&mut seed) & 0xFF) as u8,
                    };
                    bytes.push(b);
                }
                std::fs::write(&path, &bytes).unwrap();
                match InstanceFile::open(&path) {
                    // What random bytes after a valid meta group can be: a data set
                    // cut short, one without its UIDs, one that breaks its transfer
                    // syntax's rules, or elements that look like a second meta group.
                    Err(FileError::Truncated(reason)) => {
                        assert!(!reason.is_empty(), "{ts} round {round}: a reason");
                        truncated += 1;
                    }
                    Err(FileError::WrongSyntax { .. }) => wrong_syntax += 1,
                    Err(FileError::MissingUid(_)) | Err(FileError::BadMeta(_)) => other += 1,
                    Err(e) => panic!("{ts} round {round}: unexpected error kind {e:?}"),
                    // Possible in principle (random bytes spelling both UIDs): then
                    // everything it says must hold for this file.
                    Ok(inst) => {
                        assert_eq!(inst.transfer_syntax, ts, "round {round}");
                        assert!(!inst.sop_class_uid.is_empty() && !inst.sop_instance_uid.is_empty());
                        assert_eq!(inst.file_size, bytes.len() as u64);
                        assert!(inst.data_offset <= inst.file_size);
                        other += 1;
                    }
                }
            }
        }
        // The inputs reached both of the structural walk's main refusals.
        assert!(
            truncated > 0 && wrong_syntax > 0,
            "{truncated} truncated, {wrong_syntax} against the syntax, {other} other"
        );
    }

    #[test]
    fn a_cut_element_is_reported_as_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.dcm");
        let mut bytes = meta(uids::EXPLICIT_VR_LE);
        // (0010,0010) PN, length 20, but only 4 bytes follow.
        bytes.extend_from_slice(&[0x10, 0x00, 0x10, 0x00, b'P', b'N', 20, 0, b'D', b'O', b'E', b'^']);
        std::fs::write(&path, &bytes).unwrap();
        let err = InstanceFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("truncated") && err.contains("(0010,0010)"), "{err}");
        assert!(!err.contains("DOE"), "no patient data in the message: {err}");
    }
}
