//! The embedded SCP's Modality Worklist (PS3.4 K.6): C-FINDs on the worklist SOP
//! class are answered from a folder of worklist files, one scheduled procedure
//! step per file (DICOM Part 10 files of any name, such as DCMTK's `*.wl`). The
//! folder is read at each query, so files added or removed take effect at once.
//!
//! Matching (PS3.4 C.2.2.2): single value, wildcards `*` and `?`, UID lists, date
//! and time ranges (a date range with a time range is one date-time range),
//! case-insensitive person names; a sequence key with one item
//! matches when some item of the file's sequence matches every key of that item
//! (the Scheduled Procedure Step Sequence), and a sequence key with no item is
//! universal and returns the whole sequence.

use std::path::{Path, PathBuf};

use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

/// Files larger than this are not worklist items (skipped).
const MAX_WORKLIST_FILE_BYTES: u64 = 4 << 20;
/// Files read per query at most.
const MAX_WORKLIST_FILES: usize = 10_000;

/// A folder of worklist files.
#[derive(Debug, Clone)]
pub struct WorklistFolder {
    dir: PathBuf,
}

/// A worklist folder that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct WorklistFolderError {
    path: String,
    reason: String,
}

impl WorklistFolder {
    /// The folder `dir`, which must exist and be readable.
    pub fn open(dir: &Path) -> Result<Self, WorklistFolderError> {
        let err = |reason: String| WorklistFolderError {
            path: dir.display().to_string(),
            reason,
        };
        std::fs::read_dir(dir).map_err(|e| err(e.to_string()))?;
        Ok(WorklistFolder { dir: dir.to_path_buf() })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The worklist items in the folder (unreadable and non-DICOM files skipped),
    /// their text decoded to Unicode whatever their Specific Character Set.
    pub fn items(&self) -> Vec<InMemDicomObject> {
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(&self.dir)
            .max_depth(4)
            .sort_by_file_name()
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .take(MAX_WORKLIST_FILES)
        {
            if entry.metadata().map_or(true, |m| m.len() > MAX_WORKLIST_FILE_BYTES) {
                continue;
            }
            match dicom_object::OpenFileOptions::new().open_file(entry.path()) {
                Ok(file) => {
                    let mut obj = file.into_inner();
                    crate::dimse::charset::redecode_text(&mut obj);
                    out.push(obj);
                }
                Err(e) => {
                    tracing::debug!(path = %entry.path().display(), error = %e, "not a worklist file, skipped");
                }
            }
        }
        out
    }

    /// The responses to a worklist C-FIND identifier, or a failure status.
    pub fn find(&self, query: &InMemDicomObject) -> Result<Vec<InMemDicomObject>, u16> {
        let mut query = query.clone();
        crate::dimse::charset::redecode_text(&mut query);
        let items = self.items();
        let mut out = Vec::new();
        for item in &items {
            if let Some(mut rsp) = answer(&query, item) {
                let non_ascii = has_non_ascii(&rsp);
                if non_ascii {
                    rsp.put(DataElement::new(
                        tags::SPECIFIC_CHARACTER_SET,
                        VR::CS,
                        PrimitiveValue::from("ISO_IR 192"),
                    ));
                }
                out.push(rsp);
            }
        }
        Ok(out)
    }
}

/// Date and time attributes matched as one date-time range when both are ranges
/// (PS3.4 C.2.2.2.5.1): `20261201-20261202` with `2200-0600` is the night between.
const DATE_TIME_PAIRS: &[(Tag, Tag)] = &[
    (
        tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
        tags::SCHEDULED_PROCEDURE_STEP_START_TIME,
    ),
    (tags::STUDY_DATE, tags::STUDY_TIME),
];

fn text_of(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// The date-time pairs of `query` given both as ranges, and whether `have` is
/// in each combined range.
fn combined_ranges(query: &InMemDicomObject, have: &InMemDicomObject) -> (Vec<Tag>, bool) {
    let mut handled = Vec::new();
    let mut all_match = true;
    for (date, time) in DATE_TIME_PAIRS {
        let (Some(qd), Some(qt)) = (text_of(query, *date), text_of(query, *time)) else {
            continue;
        };
        let (Some((lo_d, hi_d)), Some((lo_t, hi_t))) = (qd.split_once('-'), qt.split_once('-')) else {
            continue;
        };
        handled.extend([*date, *time]);
        let have_d = text_of(have, *date).unwrap_or_default();
        let have_t = text_of(have, *time).unwrap_or_default();
        if have_d.is_empty() {
            all_match = false;
            continue;
        }
        let pad = |t: &str, fill: &str| format!("{t}{}", &fill[t.len().min(fill.len())..]);
        let at = format!("{have_d}{}", pad(have_t.split('.').next().unwrap_or(""), "000000"));
        let lo = if lo_d.is_empty() {
            String::new()
        } else {
            format!("{lo_d}{}", pad(lo_t, "000000"))
        };
        let hi = if hi_d.is_empty() {
            String::new()
        } else {
            format!("{hi_d}{}", pad(hi_t, "235959"))
        };
        if !(lo.is_empty() || at >= lo) || !(hi.is_empty() || at <= hi) {
            all_match = false;
        }
    }
    (handled, all_match)
}

/// The response for `have` if it matches every key of `query`.
fn answer(query: &InMemDicomObject, have: &InMemDicomObject) -> Option<InMemDicomObject> {
    let mut rsp = InMemDicomObject::new_empty();
    let (combined, in_range) = combined_ranges(query, have);
    if !in_range {
        return None;
    }
    for key in query.iter() {
        let tag = key.header().tag;
        if tag == tags::SPECIFIC_CHARACTER_SET || tag.group() == 0x0000 {
            continue;
        }
        match key.value() {
            Value::Sequence(seq) => {
                let file_items: &[InMemDicomObject] = have.element(tag).ok().and_then(|e| e.items()).unwrap_or(&[]);
                match seq.items().first() {
                    // Universal: the whole sequence, or an empty one.
                    None => {
                        rsp.put(DataElement::new(
                            tag,
                            VR::SQ,
                            DataSetSequence::from(file_items.to_vec()),
                        ));
                    }
                    Some(q) => {
                        let matching: Vec<InMemDicomObject> = file_items.iter().filter_map(|i| answer(q, i)).collect();
                        let q_has_matching_keys = q.iter().any(|e| is_matching_key(e.value()));
                        if matching.is_empty() && (q_has_matching_keys || !file_items.is_empty()) {
                            return None;
                        }
                        rsp.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(matching)));
                    }
                }
            }
            Value::Primitive(_) | Value::PixelSequence(_) => {
                let wanted = key.to_str().map(|s| s.to_string()).unwrap_or_default();
                let vr = key.header().vr;
                let found = have.element(tag).ok();
                let have_value = found.and_then(|e| e.to_str().ok()).map(|s| s.to_string());
                let ok = match &have_value {
                    _ if combined.contains(&tag) => true,
                    Some(v) => matches_value(vr, &wanted, v),
                    None => wanted.trim().is_empty() || wanted.trim() == "*",
                };
                if !ok {
                    return None;
                }
                match found {
                    Some(e) if e.items().is_none() => rsp.put(e.clone()),
                    _ => rsp.put(DataElement::new(tag, vr, PrimitiveValue::Empty)),
                };
            }
        }
    }
    Some(rsp)
}

/// A key with a value to match (not a return key).
fn is_matching_key(v: &Value<InMemDicomObject>) -> bool {
    match v {
        Value::Primitive(p) => !p.to_str().trim().is_empty() && p.to_str().trim() != "*",
        Value::Sequence(s) => s.items().iter().any(|i| i.iter().any(|e| is_matching_key(e.value()))),
        Value::PixelSequence(_) => false,
    }
}

/// PS3.4 C.2.2.2 matching of one value, as the storage C-FIND matches (ranges
/// for dates and times; an SPS start date/time range spans the date and time).
fn matches_value(vr: VR, wanted: &str, have: &str) -> bool {
    super::storage::matches(vr, wanted, have)
}

fn has_non_ascii(obj: &InMemDicomObject) -> bool {
    obj.iter().any(|e| match e.value() {
        Value::Sequence(s) => s.items().iter().any(has_non_ascii),
        Value::Primitive(p) => matches!(p, PrimitiveValue::Str(_) | PrimitiveValue::Strs(_)) && !p.to_str().is_ascii(),
        Value::PixelSequence(_) => false,
    })
}

/// Whether a C-FIND is on the Modality Worklist SOP class.
pub(crate) fn is_worklist(sop_class: &str) -> bool {
    sop_class == crate::association::uids::MODALITY_WORKLIST_FIND
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(modality: &str, date: &str, name: &str) -> InMemDicomObject {
        let sps = InMemDicomObject::from_element_iter([
            DataElement::new(tags::MODALITY, VR::CS, PrimitiveValue::from(modality)),
            DataElement::new(
                tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
                VR::DA,
                PrimitiveValue::from(date),
            ),
            DataElement::new(tags::SCHEDULED_STATION_AE_TITLE, VR::AE, PrimitiveValue::from("CT01")),
        ]);
        InMemDicomObject::from_element_iter([
            DataElement::new(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from(name)),
            DataElement::new(tags::PATIENT_ID, VR::LO, PrimitiveValue::from("P1")),
            DataElement::new(
                tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(vec![sps]),
            ),
        ])
    }

    fn query(keys: &[&str]) -> InMemDicomObject {
        let keys: Vec<crate::dimse::QueryKey> = keys.iter().map(|k| k.parse().unwrap()).collect();
        let mut obj = InMemDicomObject::new_empty();
        crate::dimse::query::put_keys(&mut obj, &keys).unwrap();
        obj
    }

    #[test]
    fn sequence_keys_match_the_step_item() {
        let item = step("CT", "20261201", "DOE^JANE");
        let q = query(&[
            "PatientName",
            "ScheduledProcedureStepSequence.Modality=CT",
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=20261201-20261202",
        ]);
        let rsp = answer(&q, &item).expect("matches");
        assert_eq!(rsp.element(tags::PATIENT_NAME).unwrap().to_str().unwrap(), "DOE^JANE");
        let sps = rsp
            .element(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            .unwrap()
            .items()
            .unwrap();
        assert_eq!(sps.len(), 1);
        assert_eq!(sps[0].element(tags::MODALITY).unwrap().to_str().unwrap(), "CT");
        // Only what was asked for comes back.
        assert!(sps[0].element(tags::SCHEDULED_STATION_AE_TITLE).is_err());
        assert!(answer(&query(&["ScheduledProcedureStepSequence.Modality=MR"]), &item).is_none());
        assert!(answer(
            &query(&["ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=20261203-"]),
            &item
        )
        .is_none());
        assert!(answer(&query(&["PatientName=doe*"]), &item).is_some());
        assert!(answer(&query(&["PatientID=P2"]), &item).is_none());
    }

    #[test]
    fn date_and_time_ranges_combine() {
        let mut item = step("CT", "20261201", "DOE^JANE");
        let mut sps = item
            .element(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()[0]
            .clone();
        sps.put(DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_START_TIME,
            VR::TM,
            PrimitiveValue::from("2330"),
        ));
        item.put(DataElement::new(
            tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![sps]),
        ));
        let night = |d: &str, t: &str| {
            query(&[
                &format!("ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate={d}"),
                &format!("ScheduledProcedureStepSequence.ScheduledProcedureStepStartTime={t}"),
            ])
        };
        // 2026-12-01 23:30 is in the night from the 1st 22:00 to the 2nd 06:00,
        // though 2330 is not in 2200-0600 as a time alone.
        assert!(answer(&night("20261201-20261202", "2200-0600"), &item).is_some());
        assert!(answer(&night("20261202-20261203", "2200-0600"), &item).is_none());
        assert!(answer(&night("20261201-", "2300-"), &item).is_some());
        assert!(answer(&night("20261201-", "2345-"), &item).is_none());
        // A single time is matched on its own.
        assert!(answer(&night("20261201-20261202", "2330"), &item).is_some());
    }

    #[test]
    fn an_empty_sequence_key_returns_the_whole_sequence() {
        let item = step("CT", "20261201", "DOE^JANE");
        let rsp = answer(&query(&["ScheduledProcedureStepSequence"]), &item).unwrap();
        let sps = rsp
            .element(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            .unwrap()
            .items()
            .unwrap();
        assert!(sps[0].element(tags::SCHEDULED_STATION_AE_TITLE).is_ok());
    }

    #[test]
    fn non_ascii_answers_declare_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let item = step("MR", "20261201", "Yamada^Tarou=山田^太郎=やまだ^たろう");
        let mut item = item;
        item.put(DataElement::new(
            tags::SPECIFIC_CHARACTER_SET,
            VR::CS,
            PrimitiveValue::from("ISO_IR 192"),
        ));
        let file = item
            .with_meta(
                dicom_object::FileMetaTableBuilder::new()
                    .media_storage_sop_class_uid("1.2.276.0.7230010.3.1.0.1")
                    .media_storage_sop_instance_uid("1.2.3.4")
                    .transfer_syntax("1.2.840.10008.1.2.1"),
            )
            .unwrap();
        file.write_to_file(dir.path().join("a.wl")).unwrap();
        std::fs::write(dir.path().join("lockfile"), b"").unwrap();
        let folder = WorklistFolder::open(dir.path()).unwrap();
        let found = folder.find(&query(&["PatientName=Yamada*"])).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].element(tags::PATIENT_NAME).unwrap().to_str().unwrap(),
            "Yamada^Tarou=山田^太郎=やまだ^たろう"
        );
        assert_eq!(
            found[0]
                .element(tags::SPECIFIC_CHARACTER_SET)
                .unwrap()
                .to_str()
                .unwrap(),
            "ISO_IR 192"
        );
    }
}
