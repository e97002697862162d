//! What the embedded SCP holds: received instances (in memory or under a folder)
//! and an attribute index over them that answers Patient/Study Root C-FIND.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

/// One received instance.
#[derive(Debug, Clone)]
pub struct StoredInstance {
    /// SOP Class UID (0008,0016).
    pub sop_class_uid: String,
    /// SOP Instance UID (0008,0018).
    pub sop_instance_uid: String,
    /// The transfer syntax UID it was received in.
    pub transfer_syntax: String,
    /// The AE title that sent it (Calling AE Title).
    pub calling_ae: String,
    /// Data set size in bytes, as received.
    pub size: usize,
    /// Where it was written, with `--storage DIR`.
    pub path: Option<PathBuf>,
    /// Move Originator AE Title and Message ID (PS3.7 9.3.1.1) of the C-STORE: the
    /// C-MOVE this instance is a sub-operation of.
    pub move_originator: Option<(String, u16)>,
}

/// Attributes of one instance kept for C-FIND: text values by tag (pixel data and
/// other binary values are never kept).
type Record = BTreeMap<Tag, String>;

/// Instances received, and their index.
#[derive(Debug, Default)]
pub struct Storage {
    dir: Option<PathBuf>,
    /// Files go to `dir/<Study>/<Series>/<SOP>.dcm` rather than `dir/<SOP>.dcm`
    /// (the layout of retrieved files).
    by_study: bool,
    /// Told of every instance stored (a C-MOVE listener follows its move with it).
    notify: Mutex<Option<tokio::sync::mpsc::UnboundedSender<StoredInstance>>>,
    /// Data set bytes held at most in memory mode.
    max_memory_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    instances: Vec<StoredInstance>,
    /// Data sets (memory mode only), by position in `instances`.
    data: Vec<Option<Vec<u8>>>,
    records: Vec<Record>,
    /// Sum of the data sets held in `data`.
    memory_bytes: usize,
}

/// Why an instance was not stored: the C-STORE status to answer, and a reason for
/// the log (UIDs only, never patient data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRefusal {
    /// The C-STORE status to answer.
    pub status: u16,
    /// Why, for the log (UIDs only, never patient data).
    pub reason: String,
}

impl StoreRefusal {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        StoreRefusal {
            status,
            reason: reason.into(),
        }
    }
}

/// Default of [`Storage`]'s memory bound (memory mode).
pub const DEFAULT_MAX_MEMORY_BYTES: usize = 1 << 30;

pub use crate::association::uids::is_valid_uid;

impl Storage {
    /// A store writing under `dir` (or holding instances in memory), with the default memory limit.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Storage::with_memory_limit(dir, DEFAULT_MAX_MEMORY_BYTES)
    }

    /// Memory mode keeps at most `max_memory_bytes` of data sets; beyond, C-STORE
    /// is answered A700 (out of resources).
    pub fn with_memory_limit(dir: Option<PathBuf>, max_memory_bytes: usize) -> Self {
        Storage {
            dir,
            by_study: false,
            notify: Mutex::new(None),
            max_memory_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Write files as `dir/<Study>/<Series>/<SOP>.dcm` (the retrieved-files layout),
    /// and keep no index of them (a listener's memory must not grow with the
    /// number of instances it receives: they are handed on through
    /// [`Storage::notify_to`]).
    pub fn by_study(mut self) -> Self {
        self.by_study = true;
        self
    }

    /// Where a C-STORE's data set is streamed to disk as its fragments arrive (the
    /// listener's layout, which keeps no index): memory stays bounded by the PDU
    /// size whatever the instance size. `None`: the data set is kept whole (memory
    /// mode, or `--storage DIR`, whose index is built from it).
    pub(crate) fn streaming_dir(&self) -> Option<&Path> {
        self.dir.as_deref().filter(|_| self.by_study)
    }

    /// An instance streamed to disk under [`Storage::streaming_dir`]: tell whoever
    /// follows them.
    pub(crate) fn received(&self, instance: StoredInstance) {
        if let Some(tx) = self.notify.lock().as_ref() {
            let _ = tx.send(instance);
        }
    }

    /// Every instance stored from now on is also sent to `tx`.
    pub fn notify_to(&self, tx: tokio::sync::mpsc::UnboundedSender<StoredInstance>) {
        *self.notify.lock() = Some(tx);
    }

    /// Keep an instance (blocking: parses and writes; call it off the runtime's
    /// threads). A refusal carries the C-STORE status to answer.
    pub fn store(
        &self,
        sop_class: &str,
        sop_instance: &str,
        ts: &str,
        calling_ae: &str,
        data: Vec<u8>,
    ) -> Result<(), StoreRefusal> {
        self.store_from(sop_class, sop_instance, ts, calling_ae, None, data)
    }

    /// [`Storage::store`] of a C-STORE sub-operation of a C-MOVE (its Move
    /// Originator AE Title and Message ID).
    pub fn store_from(
        &self,
        sop_class: &str,
        sop_instance: &str,
        ts: &str,
        calling_ae: &str,
        move_originator: Option<(String, u16)>,
        data: Vec<u8>,
    ) -> Result<(), StoreRefusal> {
        if !is_valid_uid(sop_instance) {
            return Err(StoreRefusal::new(0x0117, "invalid SOP Instance UID"));
        }
        if !is_valid_uid(sop_class) {
            return Err(StoreRefusal::new(0x0122, "invalid SOP Class UID"));
        }
        let record = index_record(&data, ts);
        let folder = match (&self.dir, self.by_study) {
            (Some(dir), true) => {
                let uid = |tag| record.get(&tag).filter(|u| is_valid_uid(u));
                match (uid(tags::STUDY_INSTANCE_UID), uid(tags::SERIES_INSTANCE_UID)) {
                    (Some(study), Some(series)) => Some(dir.join(study).join(series)),
                    _ => {
                        return Err(StoreRefusal::new(
                            0xC000,
                            "the data set has no valid Study and Series Instance UIDs",
                        ))
                    }
                }
            }
            (dir, _) => dir.clone(),
        };
        if let Some(f) = folder.as_ref().filter(|_| self.by_study) {
            std::fs::create_dir_all(f)
                .map_err(|e| StoreRefusal::new(0xA700, format!("cannot create {}: {e}", f.display())))?;
        }
        let path = match &folder {
            Some(dir) => Some(
                write_part10(dir, sop_class, sop_instance, ts, calling_ae, &data)
                    .map_err(|r| StoreRefusal::new(0xA700, r))?,
            ),
            None => None,
        };
        let inst = StoredInstance {
            sop_class_uid: sop_class.to_string(),
            sop_instance_uid: sop_instance.to_string(),
            transfer_syntax: ts.to_string(),
            calling_ae: calling_ae.to_string(),
            size: data.len(),
            path: path.clone(),
            move_originator,
        };
        if let Some(tx) = self.notify.lock().as_ref() {
            let _ = tx.send(inst.clone());
        }
        if self.by_study && path.is_some() {
            return Ok(());
        }
        let mut inner = self.inner.lock();
        let existing = inner.instances.iter().position(|x| x.sop_instance_uid == sop_instance);
        let freed = existing.and_then(|i| inner.data[i].as_ref().map(Vec::len)).unwrap_or(0);
        let kept = if path.is_none() {
            let after = inner.memory_bytes - freed + data.len();
            if after > self.max_memory_bytes {
                return Err(StoreRefusal::new(
                    0xA700,
                    format!("memory storage full ({} bytes held)", inner.memory_bytes),
                ));
            }
            inner.memory_bytes = after;
            Some(data)
        } else {
            None
        };
        // A re-sent instance (same SOP Instance UID) replaces the earlier copy.
        if let Some(i) = existing {
            inner.instances[i] = inst;
            inner.data[i] = kept;
            inner.records[i] = record;
        } else {
            inner.instances.push(inst);
            inner.data.push(kept);
            inner.records.push(record);
        }
        Ok(())
    }

    /// Data set bytes held in memory.
    pub fn memory_bytes(&self) -> usize {
        self.inner.lock().memory_bytes
    }

    /// The instances received so far.
    pub fn instances(&self) -> Vec<StoredInstance> {
        self.inner.lock().instances.clone()
    }

    /// The data set of an instance held in memory.
    pub fn data_set(&self, sop_instance: &str) -> Option<Vec<u8>> {
        let inner = self.inner.lock();
        let i = inner
            .instances
            .iter()
            .position(|x| x.sop_instance_uid == sop_instance)?;
        inner.data[i].clone()
    }

    /// Load every Part 10 file under `dir` into the index (for `scp --storage` on a
    /// folder that already has files).
    pub fn load_existing(&self, dir: &Path) -> usize {
        let mut n = 0;
        for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
            if !entry.file_type().is_file() {
                continue;
            }
            let Ok(obj) = dicom_object::OpenFileOptions::new()
                .read_until(tags::PIXEL_DATA)
                .open_file(entry.path())
            else {
                continue;
            };
            let meta = obj.meta().clone();
            let record = record_of(&obj);
            let mut inner = self.inner.lock();
            inner.instances.push(StoredInstance {
                sop_class_uid: meta.media_storage_sop_class_uid().to_string(),
                sop_instance_uid: meta.media_storage_sop_instance_uid().to_string(),
                transfer_syntax: meta.transfer_syntax().to_string(),
                calling_ae: String::new(),
                size: 0,
                path: Some(entry.path().to_path_buf()),
                move_originator: None,
            });
            inner.data.push(None);
            inner.records.push(record);
            n += 1;
        }
        n
    }

    /// C-FIND: one identifier per distinct entity at `level` matching `query`.
    pub fn find(&self, query: &InMemDicomObject, patient_root: bool) -> Result<Vec<InMemDicomObject>, u16> {
        let level = query
            .element(tags::QUERY_RETRIEVE_LEVEL)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim().to_ascii_uppercase())
            .ok_or(0xA900u16)?;
        let unique = match level.as_str() {
            "PATIENT" if patient_root => tags::PATIENT_ID,
            "STUDY" => tags::STUDY_INSTANCE_UID,
            "SERIES" => tags::SERIES_INSTANCE_UID,
            "IMAGE" => tags::SOP_INSTANCE_UID,
            _ => return Err(0xA900),
        };
        let keys: Vec<(Tag, VR, String)> = query
            .iter()
            .filter(|e| e.header().tag != tags::QUERY_RETRIEVE_LEVEL && e.header().tag != tags::SPECIFIC_CHARACTER_SET)
            .map(|e| {
                (
                    e.header().tag,
                    e.header().vr,
                    e.to_str().map(|s| s.to_string()).unwrap_or_default(),
                )
            })
            .collect();
        let inner = self.inner.lock();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (i, record) in inner.records.iter().enumerate() {
            let Some(id) = record.get(&unique) else { continue };
            if seen.contains(id) {
                continue;
            }
            let all_match = keys.iter().all(|(tag, vr, value)| {
                if let Some(values) = computed(&inner.records, record, *tag) {
                    let vr = dictionary_vr(*tag);
                    return value.is_empty() || value.split('\\').any(|v| values.iter().any(|m| matches(vr, v, m)));
                }
                match record.get(tag) {
                    Some(have) => matches(*vr, value, have),
                    None => value.is_empty() || value == "*",
                }
            });
            if !all_match {
                continue;
            }
            seen.insert(id.clone());
            let mut rsp = InMemDicomObject::new_empty();
            rsp.put(DataElement::new(
                tags::QUERY_RETRIEVE_LEVEL,
                VR::CS,
                PrimitiveValue::from(level.as_str()),
            ));
            if let Some(cs) = record.get(&tags::SPECIFIC_CHARACTER_SET) {
                rsp.put(DataElement::new(
                    tags::SPECIFIC_CHARACTER_SET,
                    VR::CS,
                    PrimitiveValue::from(cs.as_str()),
                ));
            }
            for (tag, vr, _) in &keys {
                let value = match computed(&inner.records, record, *tag) {
                    Some(values) => Some(values.join("\\")),
                    None => record.get(tag).cloned(),
                };
                let value = match value {
                    Some(v) if !v.is_empty() => PrimitiveValue::from(v),
                    _ => PrimitiveValue::Empty,
                };
                let vr = if *vr == VR::UN { dictionary_vr(*tag) } else { *vr };
                if vr == VR::SQ {
                    continue;
                }
                rsp.put(DataElement::new(*tag, vr, value));
            }
            let _ = i;
            out.push(rsp);
        }
        Ok(out)
    }
}

/// An instance a C-GET or C-MOVE sends: what it is, and its data set (held in
/// memory, or in its file).
#[derive(Debug, Clone)]
pub struct RetrieveItem {
    /// What the instance is.
    pub instance: StoredInstance,
    /// Its data set, when held in memory (else read from its file).
    pub data: Option<Vec<u8>>,
}

impl Storage {
    /// C-GET / C-MOVE: every instance under the entities at the identifier's level
    /// that match it (PS3.4 C.4.2.2, C.4.3.2), in the order received.
    pub fn retrieve_set(&self, identifier: &InMemDicomObject, patient_root: bool) -> Result<Vec<RetrieveItem>, u16> {
        let level = identifier
            .element(tags::QUERY_RETRIEVE_LEVEL)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim().to_ascii_uppercase())
            .ok_or(0xA900u16)?;
        let unique = match level.as_str() {
            "PATIENT" if patient_root => tags::PATIENT_ID,
            "STUDY" => tags::STUDY_INSTANCE_UID,
            "SERIES" => tags::SERIES_INSTANCE_UID,
            "IMAGE" => tags::SOP_INSTANCE_UID,
            _ => return Err(0xA900),
        };
        // The matching entities, by the query's own rules.
        let mut query = identifier.clone();
        if query.element(unique).is_err() {
            query.put(DataElement::new(unique, dictionary_vr(unique), PrimitiveValue::Empty));
        }
        let ids: HashSet<String> = self
            .find(&query, patient_root)?
            .iter()
            .filter_map(|m| {
                m.element(unique)
                    .ok()
                    .and_then(|e| e.to_str().ok())
                    .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            })
            .collect();
        let inner = self.inner.lock();
        Ok(inner
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| r.get(&unique).is_some_and(|v| ids.contains(v)))
            .map(|(i, _)| RetrieveItem {
                instance: inner.instances[i].clone(),
                data: inner.data[i].clone(),
            })
            .collect())
    }
}

fn dictionary_vr(tag: Tag) -> VR {
    StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.vr().relaxed())
        .unwrap_or(VR::LO)
}

/// The attributes an SCP works out over what it holds rather than reads from one
/// instance (PS3.4 C.3.4): Modalities and SOP Classes in Study, and the numbers of
/// related series and instances; `None` for any other tag.
fn computed(records: &[Record], record: &Record, tag: Tag) -> Option<Vec<String>> {
    let (scope, what) = match tag {
        tags::MODALITIES_IN_STUDY => (tags::STUDY_INSTANCE_UID, tags::MODALITY),
        tags::SOP_CLASSES_IN_STUDY => (tags::STUDY_INSTANCE_UID, tags::SOP_CLASS_UID),
        tags::NUMBER_OF_STUDY_RELATED_SERIES => (tags::STUDY_INSTANCE_UID, tags::SERIES_INSTANCE_UID),
        tags::NUMBER_OF_STUDY_RELATED_INSTANCES => (tags::STUDY_INSTANCE_UID, tags::SOP_INSTANCE_UID),
        tags::NUMBER_OF_SERIES_RELATED_INSTANCES => (tags::SERIES_INSTANCE_UID, tags::SOP_INSTANCE_UID),
        _ => return None,
    };
    let Some(id) = record.get(&scope) else {
        return Some(Vec::new());
    };
    let mut values: Vec<String> = records
        .iter()
        .filter(|r| r.get(&scope) == Some(id))
        .filter_map(|r| r.get(&what).cloned())
        .collect();
    values.sort();
    values.dedup();
    Some(match tag {
        tags::MODALITIES_IN_STUDY | tags::SOP_CLASSES_IN_STUDY => values,
        _ => vec![values.len().to_string()],
    })
}

/// PS3.4 C.2.2.2 matching: universal (empty), list of UIDs, range (DA/TM/DT),
/// wildcard (`*`, `?`), else single value. PN matching is case-insensitive, as most
/// PACS do.
pub(crate) fn matches(vr: VR, query: &str, have: &str) -> bool {
    let query = query.trim();
    if query.is_empty() || query == "*" {
        return true;
    }
    let have = have.trim();
    if vr == VR::UI && query.contains('\\') {
        return query.split('\\').any(|q| q.trim() == have);
    }
    if matches!(vr, VR::DA | VR::TM | VR::DT) && query.contains('-') {
        let (lo, hi) = query.split_once('-').unwrap_or((query, ""));
        return (lo.is_empty() || have >= lo) && (hi.is_empty() || have <= hi || have.starts_with(hi));
    }
    let (q, h) = if vr == VR::PN {
        (query.to_uppercase(), have.to_uppercase())
    } else {
        (query.to_string(), have.to_string())
    };
    if q.contains('*') || q.contains('?') {
        return wildcard(q.as_bytes(), h.as_bytes());
    }
    if vr == VR::PN {
        // A query without components matches on the family name component too.
        return h == q || h.trim_end_matches('^') == q;
    }
    q == h
}

fn wildcard(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Index a received data set, after the structural check (its size is already
/// bounded by the message reader); one that fails it is kept but not indexed.
fn index_record(data: &[u8], ts: &str) -> Record {
    match crate::dimse::dataset_check::decode_checked(data, ts, usize::MAX) {
        Ok(obj) => record_of(&obj),
        Err(e) => {
            tracing::debug!(error = %e, "received data set not indexed");
            Record::new()
        }
    }
}

fn record_of(obj: &InMemDicomObject) -> Record {
    obj.iter()
        .filter(|e| e.header().tag.group() != 0x7FE0 && e.header().vr != VR::SQ)
        .filter(|e| {
            !matches!(
                e.header().vr,
                VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::UN
            )
        })
        .filter_map(|e| {
            e.to_str()
                .ok()
                .map(|s| (e.header().tag, s.trim_end_matches(['\0', ' ']).to_string()))
        })
        .collect()
}

fn write_part10(
    dir: &Path,
    sop_class: &str,
    sop_instance: &str,
    ts: &str,
    calling_ae: &str,
    data: &[u8],
) -> Result<PathBuf, String> {
    use std::io::Write;
    // Checked by the caller; checked again here because it becomes a path.
    if !is_valid_uid(sop_instance) {
        return Err("invalid SOP Instance UID".into());
    }
    let path = dir.join(format!("{sop_instance}.dcm"));
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_instance)
        .transfer_syntax(ts)
        .source_application_entity_title(calling_ae)
        .implementation_class_uid(crate::IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(crate::IMPLEMENTATION_VERSION_NAME)
        .build()
        .map_err(|e| format!("cannot build file meta: {e}"))?;
    let mut f = std::fs::File::create(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(&[0u8; 128]).map_err(|e| e.to_string())?;
    f.write_all(b"DICM").map_err(|e| e.to_string())?;
    meta.write(&mut f).map_err(|e| format!("cannot write file meta: {e}"))?;
    f.write_all(data)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_classes_in_study_are_worked_out_over_what_is_held() {
        use dicom_encoding::TransferSyntaxIndex;
        use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
        let ts = crate::association::uids::EXPLICIT_VR_LE;
        let storage = Storage::new(None);
        // Study 1.2.3: series .1 holds two CTs, series .2 one MR; series .9 is another study's.
        for (sop, class, study, series, modality) in [
            ("1.2.3.1.1", "1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.3.1", "CT"),
            ("1.2.3.1.2", "1.2.840.10008.5.1.4.1.1.2", "1.2.3", "1.2.3.1", "CT"),
            ("1.2.3.2.1", "1.2.840.10008.5.1.4.1.1.4", "1.2.3", "1.2.3.2", "MR"),
            ("1.2.4.9.1", "1.2.840.10008.5.1.4.1.1.4", "1.2.4", "1.2.4.9", "MR"),
        ] {
            let mut o = InMemDicomObject::new_empty();
            for (tag, vr, v) in [
                (tags::SOP_CLASS_UID, VR::UI, class),
                (tags::SOP_INSTANCE_UID, VR::UI, sop),
                (tags::MODALITY, VR::CS, modality),
                (tags::STUDY_INSTANCE_UID, VR::UI, study),
                (tags::SERIES_INSTANCE_UID, VR::UI, series),
            ] {
                o.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
            }
            let mut data = Vec::new();
            o.write_dataset_with_ts(&mut data, TransferSyntaxRegistry.get(ts).unwrap())
                .unwrap();
            storage.store(class, sop, ts, "AE", data).unwrap();
        }
        let query = |level: &str, keys: &[(Tag, VR, &str)]| {
            let mut q = InMemDicomObject::new_empty();
            q.put(DataElement::new(
                tags::QUERY_RETRIEVE_LEVEL,
                VR::CS,
                PrimitiveValue::from(level),
            ));
            for (tag, vr, v) in keys {
                q.put(DataElement::new(*tag, *vr, PrimitiveValue::from(*v)));
            }
            storage.find(&q, false).unwrap()
        };
        let text = |o: &InMemDicomObject, tag| o.element(tag).unwrap().to_str().unwrap().to_string();
        let studies = query(
            "STUDY",
            &[
                (tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3"),
                (tags::SOP_CLASSES_IN_STUDY, VR::UI, ""),
                (tags::NUMBER_OF_STUDY_RELATED_SERIES, VR::IS, ""),
                (tags::NUMBER_OF_STUDY_RELATED_INSTANCES, VR::IS, ""),
                (tags::MODALITIES_IN_STUDY, VR::CS, ""),
            ],
        );
        assert_eq!(studies.len(), 1);
        assert_eq!(
            text(&studies[0], tags::SOP_CLASSES_IN_STUDY),
            "1.2.840.10008.5.1.4.1.1.2\\1.2.840.10008.5.1.4.1.1.4"
        );
        assert_eq!(text(&studies[0], tags::NUMBER_OF_STUDY_RELATED_SERIES), "2");
        assert_eq!(text(&studies[0], tags::NUMBER_OF_STUDY_RELATED_INSTANCES), "3");
        assert_eq!(text(&studies[0], tags::MODALITIES_IN_STUDY), "CT\\MR");
        let series = query(
            "SERIES",
            &[
                (tags::STUDY_INSTANCE_UID, VR::UI, "1.2.3"),
                (tags::SERIES_INSTANCE_UID, VR::UI, ""),
                (tags::NUMBER_OF_SERIES_RELATED_INSTANCES, VR::IS, ""),
            ],
        );
        let mut counts: Vec<_> = series
            .iter()
            .map(|s| {
                (
                    text(s, tags::SERIES_INSTANCE_UID),
                    text(s, tags::NUMBER_OF_SERIES_RELATED_INSTANCES),
                )
            })
            .collect();
        counts.sort();
        assert_eq!(counts, [("1.2.3.1".into(), "2".into()), ("1.2.3.2".into(), "1".into())]);
        // A computed key with a value matches on it.
        assert_eq!(query("STUDY", &[(tags::MODALITIES_IN_STUDY, VR::CS, "MR")]).len(), 2);
        assert_eq!(query("STUDY", &[(tags::MODALITIES_IN_STUDY, VR::CS, "CT")]).len(), 1);
    }

    #[test]
    fn uids_that_are_not_uids_are_refused_not_sanitised() {
        assert!(is_valid_uid("1.2.34"));
        assert!(!is_valid_uid("1.2.3a4"), "would have collided with 1.2.34");
        assert!(!is_valid_uid("../../etc/passwd"));
        assert!(!is_valid_uid("1..2"));
        assert!(!is_valid_uid(&"1".repeat(65)));
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(Some(dir.path().to_path_buf()));
        let ts = crate::association::uids::EXPLICIT_VR_LE;
        storage.store("1.2.3", "1.2.34", ts, "AE", Vec::new()).unwrap();
        let refused = storage.store("1.2.3", "1.2.3a4", ts, "AE", Vec::new()).unwrap_err();
        assert_eq!(refused.status, 0x0117);
        assert_eq!(storage.instances().len(), 1);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn memory_storage_is_bounded() {
        let storage = Storage::with_memory_limit(None, 100);
        let ts = crate::association::uids::EXPLICIT_VR_LE;
        storage.store("1.2.3", "1.2.3.1", ts, "AE", vec![0; 60]).unwrap();
        // Replacing an instance frees what it held.
        storage.store("1.2.3", "1.2.3.1", ts, "AE", vec![0; 80]).unwrap();
        let full = storage.store("1.2.3", "1.2.3.2", ts, "AE", vec![0; 40]).unwrap_err();
        assert_eq!(full.status, 0xA700);
        assert_eq!(storage.memory_bytes(), 80);
    }

    #[test]
    fn wildcards() {
        assert!(wildcard(b"DOE*", b"DOE^JANE"));
        assert!(wildcard(b"*JANE", b"DOE^JANE"));
        assert!(wildcard(b"D?E*", b"DOE^JANE"));
        assert!(!wildcard(b"ROE*", b"DOE^JANE"));
        assert!(wildcard(b"*", b""));
    }

    #[test]
    fn matching_rules() {
        assert!(matches(VR::PN, "doe*", "DOE^JANE"));
        assert!(matches(VR::DA, "20200101-20201231", "20200615"));
        assert!(!matches(VR::DA, "20200101-20201231", "20210101"));
        assert!(matches(VR::DA, "-20201231", "20200615"));
        assert!(matches(VR::UI, "1.2\\1.3", "1.3"));
        assert!(!matches(VR::CS, "MR", "CT"));
        assert!(matches(VR::LO, "", "anything"));
    }
}
