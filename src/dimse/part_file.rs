//! A Part 10 file being received: a C-STORE's data set written to disk as its
//! fragments arrive (behind a file meta group naming the transfer syntax it came
//! in), so memory stays bounded by the PDU size whatever the instance size, then
//! filed as `DIR/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`.
//! Used by the C-GET SCU for its sub-operations and by the storage listener (the
//! C-MOVE destination).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;

use crate::association::uids::is_valid_uid;

use super::Status;

/// A Part 10 file being received: written under a temporary name in the output
/// folder, then moved where it belongs once its study and series are known.
pub(crate) struct PartFile {
    tmp: Option<PathBuf>,
    writer: Option<BufWriter<File>>,
    pub(crate) bytes: u64,
    /// The transfer syntax of the data set.
    ts: String,
    /// The data set's first [`HEAD_BYTES`], where its Study and Series Instance
    /// UIDs are (so the file need not be read back to file it).
    head: Vec<u8>,
    /// Set once the instance cannot be kept: the status to answer and why. The
    /// rest of its data set is still read (and dropped).
    refusal: Option<(Status, String)>,
}

/// Bytes of a data set's beginning kept in memory to find its study and series:
/// room for the attributes before (0020,000E) in all but the most unusual instances
/// (those are read back from the file).
const HEAD_BYTES: usize = 64 * 1024;

/// Our process ID, for the temporary names (read once: it is a system call).
fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// Out of resources (PS3.4 B.2.3): we could not write it.
pub(crate) const STORE_OUT_OF_RESOURCES: Status = Status(0xA700);
/// Cannot understand (PS3.4 B.2.3): the data set says nothing we can file it by.
pub(crate) const STORE_CANNOT_UNDERSTAND: Status = Status(0xC000);

impl PartFile {
    pub(crate) fn refused(status: u16, reason: &str) -> Self {
        PartFile {
            tmp: None,
            writer: None,
            bytes: 0,
            ts: String::new(),
            head: Vec::new(),
            refusal: Some((Status(status), reason.to_string())),
        }
    }

    /// The file of an instance: `spare` when one was made ahead, else a new one.
    pub(crate) fn create(
        out_dir: &Path,
        spare: Option<SpareFile>,
        sop_class: &str,
        sop_instance: &str,
        ts: &str,
        source_ae: &str,
    ) -> Self {
        let (tmp, opened) = match spare.and_then(SpareFile::take) {
            Some((path, f)) => (path, Ok(f)),
            None => {
                let tmp = out_dir.join(format!(".{sop_instance}.{}.part", pid()));
                // The folder is made only when missing: checking it for every
                // instance costs two system calls each.
                let opened = match File::create(&tmp) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        std::fs::create_dir_all(out_dir).and_then(|_| File::create(&tmp))
                    }
                    other => other,
                }
                .map_err(|e| format!("cannot create {}: {e}", tmp.display()));
                (tmp, opened)
            }
        };
        let mut file = match opened {
            Ok(f) => PartFile {
                tmp: Some(tmp),
                writer: Some(BufWriter::with_capacity(64 * 1024, f)),
                bytes: 0,
                ts: ts.to_string(),
                head: Vec::new(),
                refusal: None,
            },
            Err(reason) => return PartFile::refused(STORE_OUT_OF_RESOURCES.0, &reason),
        };
        match part10_header(sop_class, sop_instance, ts, source_ae) {
            Ok(header) => {
                file.write_raw(&header);
                file.bytes = 0;
            }
            Err(reason) => file.fail(STORE_OUT_OF_RESOURCES, reason),
        }
        file
    }

    fn fail(&mut self, status: Status, reason: String) {
        if self.refusal.is_none() {
            self.refusal = Some((status, reason));
        }
        self.discard();
    }

    fn write_raw(&mut self, data: &[u8]) {
        if let Some(w) = &mut self.writer {
            if let Err(e) = w.write_all(data) {
                self.fail(STORE_OUT_OF_RESOURCES, format!("cannot write: {e}"));
            }
        }
    }

    pub(crate) fn write(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        if self.head.len() < HEAD_BYTES {
            let room = HEAD_BYTES - self.head.len();
            self.head.extend_from_slice(&data[..data.len().min(room)]);
        }
        self.write_raw(data);
    }

    /// Drop the partial file.
    pub(crate) fn discard(&mut self) {
        self.writer = None;
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }

    /// Flush, read its study and series, and move it into place.
    pub(crate) fn finish(mut self, out_dir: &Path, sop_instance: &str) -> Result<PathBuf, (Status, String)> {
        if let Some(refusal) = self.refusal.take() {
            self.discard();
            return Err(refusal);
        }
        let (Some(writer), Some(tmp)) = (self.writer.take(), self.tmp.clone()) else {
            return Err((STORE_OUT_OF_RESOURCES, "nothing written".into()));
        };
        if let Err(e) = writer
            .into_inner()
            .map_err(|e| e.into_error())
            // Flushed, not fsynced (as DCMTK and Orthanc write): an fsync per
            // instance would cost a disk round trip each.
            .and_then(|mut f| f.flush())
        {
            self.discard();
            return Err((STORE_OUT_OF_RESOURCES, format!("cannot write: {e}")));
        }
        let (study, series) = match study_and_series(&self.head, &self.ts, &tmp) {
            Ok(ids) => ids,
            Err(reason) => {
                self.discard();
                return Err((STORE_CANNOT_UNDERSTAND, reason));
            }
        };
        let dir = out_dir.join(&study).join(&series);
        let path = dir.join(format!("{sop_instance}.dcm"));
        let moved = match std::fs::rename(&tmp, &path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&dir).and_then(|_| std::fs::rename(&tmp, &path))
            }
            other => other,
        };
        if let Err(e) = moved {
            self.discard();
            return Err((STORE_OUT_OF_RESOURCES, format!("cannot write {}: {e}", path.display())));
        }
        self.tmp = None;
        Ok(path)
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        self.discard();
    }
}

/// An empty temporary file made ahead of the next instance, while the peer
/// prepares it: its create (tens of microseconds) is then off the path between
/// that instance's C-STORE-RQ and our response, which the peer waits for. Removed
/// when dropped unused.
pub(crate) struct SpareFile {
    path: PathBuf,
    file: Option<File>,
}

impl SpareFile {
    /// A new spare in `out_dir`; `None` when it cannot be made (the instance then
    /// makes its own, and reports why that fails).
    pub(crate) fn create(out_dir: &Path) -> Option<SpareFile> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = out_dir.join(format!(".pacs-net-{}-{n}.part", pid()));
        File::create(&path).ok().map(|f| SpareFile { path, file: Some(f) })
    }

    fn take(mut self) -> Option<(PathBuf, File)> {
        let file = self.file.take()?;
        Some((std::mem::take(&mut self.path), file))
    }
}

impl Drop for SpareFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The preamble, "DICM" and the file meta group of a received instance.
fn part10_header(sop_class: &str, sop_instance: &str, ts: &str, source_ae: &str) -> Result<Vec<u8>, String> {
    let meta = dicom_object::FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_instance)
        .transfer_syntax(ts)
        .source_application_entity_title(source_ae)
        .implementation_class_uid(crate::IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(crate::IMPLEMENTATION_VERSION_NAME)
        .build()
        .map_err(|e| format!("cannot build the file meta group: {e}"))?;
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    meta.write(&mut out)
        .map_err(|e| format!("cannot write the file meta group: {e}"))?;
    Ok(out)
}

/// Study and Series Instance UIDs of a received instance, from the head of its
/// data set, else read back from its file; refused unless they are UIDs (they
/// become folder names).
fn study_and_series(head: &[u8], ts: &str, path: &Path) -> Result<(String, String), String> {
    let wanted = [tags::STUDY_INSTANCE_UID, tags::SERIES_INSTANCE_UID];
    let texts: [Option<String>; 2] = match super::dataset_check::leading_values(head, ts, &wanted) {
        Some(values) => {
            let text = |v: Option<&[u8]>| v.map(|b| String::from_utf8_lossy(b).into_owned());
            [text(values[0]), text(values[1])]
        }
        None => {
            let obj = dicom_object::OpenFileOptions::new()
                .read_until(tags::PIXEL_DATA)
                .open_file(path)
                .map_err(|e| format!("the received data set cannot be read: {e}"))?;
            let text = |tag| {
                obj.element(tag)
                    .ok()
                    .and_then(|e| e.to_str().ok())
                    .map(|s| s.into_owned())
            };
            [text(tags::STUDY_INSTANCE_UID), text(tags::SERIES_INSTANCE_UID)]
        }
    };
    let uid = |value: &Option<String>, name: &str| -> Result<String, String> {
        let value = value
            .as_deref()
            .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_string())
            .ok_or_else(|| format!("the data set has no {name}"))?;
        if is_valid_uid(&value) {
            Ok(value)
        } else {
            Err(format!("the data set's {name} is not a valid UID"))
        }
    };
    Ok((
        uid(&texts[0], "Study Instance UID")?,
        uid(&texts[1], "Series Instance UID")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_encoding::TransferSyntaxIndex;
    use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

    #[test]
    fn a_file_whose_uids_are_not_uids_is_refused_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ts = crate::association::uids::EXPLICIT_VR_LE;
        let mut obj = dicom_object::InMemDicomObject::new_empty();
        obj.put(dicom_core::DataElement::new(
            tags::STUDY_INSTANCE_UID,
            dicom_core::VR::UI,
            dicom_core::value::PrimitiveValue::from("../../etc"),
        ));
        obj.put(dicom_core::DataElement::new(
            tags::SERIES_INSTANCE_UID,
            dicom_core::VR::UI,
            dicom_core::value::PrimitiveValue::from("1.2.3"),
        ));
        let mut data = Vec::new();
        obj.write_dataset_with_ts(&mut data, TransferSyntaxRegistry.get(ts).unwrap())
            .unwrap();
        let mut file = PartFile::create(
            dir.path(),
            SpareFile::create(dir.path()),
            "1.2.840.10008.5.1.4.1.1.7",
            "1.2.3.4",
            ts,
            "PEER",
        );
        file.write(&data);
        let (status, reason) = file.finish(dir.path(), "1.2.3.4").unwrap_err();
        assert_eq!(status, STORE_CANNOT_UNDERSTAND);
        assert!(reason.contains("Study Instance UID is not a valid UID"), "{reason}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no file left behind");
    }
}
