//! C-FIND queries: information model, level, and keys given by keyword or tag
//! (`PatientName`, `0010,0010`, `(0010,0010)`), with optional values (`KEY=VALUE`,
//! wildcards passed through), turned into an identifier data set. A key may name an
//! attribute inside a sequence item with a dot (`ScheduledProcedureStepSequence.Modality`):
//! the keys of one sequence go into its one item (PS3.4 C.2.2.1.3).

use std::str::FromStr;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_object::InMemDicomObject;

use crate::association::uids;

/// A bad query key or option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error("unknown query key `{0}`: not a DICOM keyword or a tag like 0010,0010")]
    /// Neither a DICOM keyword nor a tag.
    UnknownKey(String),
    #[error("invalid value for {key} ({vr}): `{value}`")]
    /// The value does not fit the key's VR.
    BadValue {
        /// The key.
        key: String,
        /// Its VR.
        vr: String,
        /// The value given.
        value: String,
    },
    #[error("unknown query level `{0}` (expected patient, study, series or image)")]
    /// Not patient, study, series or image.
    BadLevel(String),
    #[error("unknown query model `{0}` (expected study or patient)")]
    /// Not study or patient.
    BadModel(String),
    #[error("the study root model has no PATIENT level")]
    /// The Study Root model has no PATIENT level.
    PatientLevelInStudyRoot,
    #[error("`{0}` is not a sequence: only a sequence (VR SQ) may come before a dot in a key")]
    /// A dotted key whose parent is not a sequence.
    NotASequence(String),
}

/// The Query/Retrieve information model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryModel {
    #[default]
    /// Study Root Query/Retrieve Information Model.
    StudyRoot,
    /// Patient Root Query/Retrieve Information Model.
    PatientRoot,
}

impl QueryModel {
    /// The model's C-FIND SOP Class UID.
    pub fn sop_class(self) -> &'static str {
        match self {
            QueryModel::StudyRoot => uids::STUDY_ROOT_FIND,
            QueryModel::PatientRoot => uids::PATIENT_ROOT_FIND,
        }
    }

    /// The model's C-GET SOP class.
    pub fn get_sop_class(self) -> &'static str {
        match self {
            QueryModel::StudyRoot => uids::STUDY_ROOT_GET,
            QueryModel::PatientRoot => uids::PATIENT_ROOT_GET,
        }
    }

    /// The model's C-MOVE SOP class.
    pub fn move_sop_class(self) -> &'static str {
        match self {
            QueryModel::StudyRoot => uids::STUDY_ROOT_MOVE,
            QueryModel::PatientRoot => uids::PATIENT_ROOT_MOVE,
        }
    }
}

impl FromStr for QueryModel {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        match s.to_ascii_lowercase().as_str() {
            "study" | "study-root" | "studyroot" => Ok(QueryModel::StudyRoot),
            "patient" | "patient-root" | "patientroot" => Ok(QueryModel::PatientRoot),
            _ => Err(QueryError::BadModel(s.to_string())),
        }
    }
}

/// The Query/Retrieve level (0008,0052).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryLevel {
    /// PATIENT.
    Patient,
    #[default]
    /// STUDY.
    Study,
    /// SERIES.
    Series,
    /// IMAGE.
    Image,
}

impl QueryLevel {
    /// The level as sent in (0008,0052): `PATIENT`, `STUDY`, `SERIES` or `IMAGE`.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryLevel::Patient => "PATIENT",
            QueryLevel::Study => "STUDY",
            QueryLevel::Series => "SERIES",
            QueryLevel::Image => "IMAGE",
        }
    }

    /// The unique key of the level, always asked to be returned.
    pub fn unique_key(self) -> Tag {
        match self {
            QueryLevel::Patient => tags::PATIENT_ID,
            QueryLevel::Study => tags::STUDY_INSTANCE_UID,
            QueryLevel::Series => tags::SERIES_INSTANCE_UID,
            QueryLevel::Image => tags::SOP_INSTANCE_UID,
        }
    }

    /// Keys returned when the user asks for none, like findscu users usually type.
    fn default_return_keys(self) -> &'static [Tag] {
        match self {
            QueryLevel::Patient => &[
                tags::PATIENT_NAME,
                tags::PATIENT_ID,
                tags::PATIENT_BIRTH_DATE,
                tags::PATIENT_SEX,
            ],
            QueryLevel::Study => &[
                tags::PATIENT_NAME,
                tags::PATIENT_ID,
                tags::STUDY_DATE,
                tags::STUDY_TIME,
                tags::ACCESSION_NUMBER,
                tags::STUDY_DESCRIPTION,
                tags::MODALITIES_IN_STUDY,
                tags::STUDY_INSTANCE_UID,
            ],
            QueryLevel::Series => &[
                tags::STUDY_INSTANCE_UID,
                tags::SERIES_INSTANCE_UID,
                tags::MODALITY,
                tags::SERIES_NUMBER,
                tags::SERIES_DESCRIPTION,
            ],
            QueryLevel::Image => &[
                tags::STUDY_INSTANCE_UID,
                tags::SERIES_INSTANCE_UID,
                tags::SOP_INSTANCE_UID,
                tags::SOP_CLASS_UID,
                tags::INSTANCE_NUMBER,
            ],
        }
    }
}

impl FromStr for QueryLevel {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        match s.to_ascii_lowercase().as_str() {
            "patient" => Ok(QueryLevel::Patient),
            "study" => Ok(QueryLevel::Study),
            "series" => Ok(QueryLevel::Series),
            "image" | "instance" => Ok(QueryLevel::Image),
            _ => Err(QueryError::BadLevel(s.to_string())),
        }
    }
}

/// One query key: an attribute and its matching value (empty = return it).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryKey {
    /// The attribute's tag.
    pub tag: Tag,
    /// Its VR, from the standard dictionary.
    pub vr: VR,
    /// The matching value (empty: universal matching, return the attribute).
    pub value: String,
    /// The sequences the attribute sits in, outermost first (empty: top level);
    /// `ScheduledProcedureStepSequence.Modality` is Modality in the one item of
    /// ScheduledProcedureStepSequence.
    pub sequences: Vec<Tag>,
}

impl QueryKey {
    /// A key for `tag` (its VR from the standard dictionary) matching `value`.
    pub fn new(tag: Tag, value: &str) -> Result<Self, QueryError> {
        let vr = StandardDataDictionary
            .by_tag(tag)
            .map(|e| e.vr().relaxed())
            .ok_or_else(|| QueryError::UnknownKey(format!("{tag}")))?;
        Ok(QueryKey {
            tag,
            vr,
            value: value.to_string(),
            sequences: Vec::new(),
        })
    }

    /// The same key inside the item of the sequences `sequences` (outermost first).
    pub fn in_sequences(mut self, sequences: Vec<Tag>) -> Self {
        self.sequences = sequences;
        self
    }

    /// The key's path: its sequences, then its own tag.
    pub fn path(&self) -> Vec<Tag> {
        let mut p = self.sequences.clone();
        p.push(self.tag);
        p
    }

    /// The key as the user would write it: dotted keywords (or tags where the
    /// dictionary has no keyword).
    pub fn dotted_name(&self) -> String {
        self.path().into_iter().map(keyword_of).collect::<Vec<_>>().join(".")
    }
}

/// The dictionary keyword of `tag`, or the tag as `GGGG,EEEE`.
pub fn keyword_of(tag: Tag) -> String {
    StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.alias().to_string())
        .unwrap_or_else(|| format!("{:04X},{:04X}", tag.group(), tag.element()))
}

impl FromStr for QueryKey {
    type Err = QueryError;
    /// `KEY`, `KEY=` or `KEY=VALUE`; the value is everything after the first `=`.
    /// KEY may be dotted (`SequenceKeyword.Keyword`, any depth); every part before
    /// a dot must be a sequence.
    fn from_str(s: &str) -> Result<Self, QueryError> {
        let (key, value) = s.split_once('=').unwrap_or((s, ""));
        let key = key.trim();
        let mut parts: Vec<&str> = key.split('.').map(str::trim).collect();
        let last = parts.pop().unwrap_or_default();
        let mut sequences = Vec::with_capacity(parts.len());
        for part in parts {
            let tag = parse_tag(part).ok_or_else(|| QueryError::UnknownKey(part.to_string()))?;
            let is_sq = StandardDataDictionary
                .by_tag(tag)
                .is_some_and(|e| e.vr().relaxed() == VR::SQ);
            if !is_sq {
                return Err(QueryError::NotASequence(part.to_string()));
            }
            sequences.push(tag);
        }
        let tag = parse_tag(last).ok_or_else(|| QueryError::UnknownKey(key.to_string()))?;
        Ok(QueryKey::new(tag, value)?.in_sequences(sequences))
    }
}

fn parse_tag(key: &str) -> Option<Tag> {
    if key.is_empty() {
        return None;
    }
    if let Ok(tag) = key.parse::<Tag>() {
        return Some(tag);
    }
    StandardDataDictionary.by_name(key).map(|e| e.tag())
}

/// A C-FIND request.
#[derive(Debug, Clone, Default)]
pub struct FindQuery {
    /// The information model.
    pub model: QueryModel,
    /// The Query/Retrieve Level (0008,0052).
    pub level: QueryLevel,
    /// The keys of the identifier.
    pub keys: Vec<QueryKey>,
}

impl FindQuery {
    /// A query; the Study Root model with the PATIENT level is an error.
    pub fn new(model: QueryModel, level: QueryLevel, keys: Vec<QueryKey>) -> Result<Self, QueryError> {
        if model == QueryModel::StudyRoot && level == QueryLevel::Patient {
            return Err(QueryError::PatientLevelInStudyRoot);
        }
        Ok(FindQuery { model, level, keys })
    }

    /// The identifier: QueryRetrieveLevel, the keys (or the level's default return
    /// keys when none were given), and the level's unique key.
    pub fn identifier(&self) -> Result<InMemDicomObject, QueryError> {
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::QUERY_RETRIEVE_LEVEL,
            VR::CS,
            PrimitiveValue::from(self.level.as_str()),
        ));
        let mut keys = self.keys.clone();
        if keys.is_empty() {
            for tag in self.level.default_return_keys() {
                keys.push(QueryKey::new(*tag, "")?);
            }
        }
        if !keys
            .iter()
            .any(|k| k.tag == self.level.unique_key() && k.sequences.is_empty())
        {
            keys.push(QueryKey::new(self.level.unique_key(), "")?);
        }
        put_query_keys(&mut obj, &keys)?;
        Ok(obj)
    }

    /// The keys the identifier asks for: the user's, or the level's defaults.
    pub fn effective_keys(&self) -> Vec<QueryKey> {
        if self.keys.is_empty() {
            self.level
                .default_return_keys()
                .iter()
                .filter_map(|t| QueryKey::new(*t, "").ok())
                .collect()
        } else {
            self.keys.clone()
        }
    }
}

/// Put `keys` into `obj`: top-level keys as elements, the keys of a sequence into
/// its one item (PS3.4 C.2.2.1.3: several keys of one sequence share the item),
/// and Specific Character Set ISO_IR 192 when a value is not ASCII.
pub fn put_keys(obj: &mut InMemDicomObject, keys: &[QueryKey]) -> Result<(), QueryError> {
    let paths: Vec<(&[Tag], &QueryKey)> = keys.iter().map(|k| (k.sequences.as_slice(), k)).collect();
    let item = build_item(&paths)?;
    for e in item {
        obj.put(e);
    }
    if keys.iter().any(|k| !k.value.is_ascii()) {
        obj.put(DataElement::new(
            tags::SPECIFIC_CHARACTER_SET,
            VR::CS,
            PrimitiveValue::from("ISO_IR 192"),
        ));
    }
    Ok(())
}

/// [`put_keys`], with Specific Character Set ISO_IR 192 always: SCPs that convert
/// their answers to the query's character set (Orthanc) then keep every name
/// (their default, Latin-1, loses Japanese or Chinese ones), and SCPs that leave
/// (0008,0005) out of a response unless it is asked for (DCMTK) return it.
pub(crate) fn put_query_keys(obj: &mut InMemDicomObject, keys: &[QueryKey]) -> Result<(), QueryError> {
    put_keys(obj, keys)?;
    obj.put(DataElement::new(
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        PrimitiveValue::from("ISO_IR 192"),
    ));
    Ok(())
}

/// One item (or the top level) from keys whose remaining sequence path is given.
fn build_item(keys: &[(&[Tag], &QueryKey)]) -> Result<InMemDicomObject, QueryError> {
    let mut obj = InMemDicomObject::new_empty();
    let mut nested: Vec<Tag> = Vec::new();
    for (path, key) in keys {
        match path.first() {
            None => {
                if !(key.vr == VR::SQ && nested.contains(&key.tag)) {
                    obj.put(element_for(key)?);
                }
            }
            Some(seq) if !nested.contains(seq) => nested.push(*seq),
            Some(_) => {}
        }
    }
    for seq in nested {
        let inner: Vec<(&[Tag], &QueryKey)> = keys
            .iter()
            .filter(|(p, _)| p.first() == Some(&seq))
            .map(|(p, k)| (&p[1..], *k))
            .collect();
        let item = build_item(&inner)?;
        obj.put(DataElement::new(seq, VR::SQ, DataSetSequence::from(vec![item])));
    }
    Ok(obj)
}

/// Anything that is sent as a C-FIND: its SOP class and its identifier.
pub trait FindRequest: Send + Sync {
    /// The C-FIND SOP Class UID (the information model).
    fn sop_class(&self) -> &'static str;
    /// What is searched, for spans and logs: the Query/Retrieve level, or `WORKLIST`.
    fn level_name(&self) -> &'static str;
    /// The identifier data set.
    fn identifier(&self) -> Result<InMemDicomObject, QueryError>;
    /// The presentation context an association needs for it (the pool's default
    /// profile proposes the Query/Retrieve models).
    fn context(&self) -> crate::association::ContextRequest {
        crate::association::ContextRequest::uncompressed(self.sop_class())
    }
}

impl FindRequest for FindQuery {
    fn sop_class(&self) -> &'static str {
        self.model.sop_class()
    }
    fn level_name(&self) -> &'static str {
        self.level.as_str()
    }
    fn identifier(&self) -> Result<InMemDicomObject, QueryError> {
        FindQuery::identifier(self)
    }
}

impl FindQuery {
    /// The identifier of a C-GET or C-MOVE (PS3.4 C.4.2.1.4, C.4.3.1.3): the level
    /// and the keys that carry a value; a retrieve has no return keys.
    pub fn retrieve_identifier(&self) -> Result<InMemDicomObject, QueryError> {
        let mut obj = InMemDicomObject::new_empty();
        obj.put(DataElement::new(
            tags::QUERY_RETRIEVE_LEVEL,
            VR::CS,
            PrimitiveValue::from(self.level.as_str()),
        ));
        let keys: Vec<QueryKey> = self.keys.iter().filter(|k| !k.value.is_empty()).cloned().collect();
        put_keys(&mut obj, &keys)?;
        Ok(obj)
    }
}

fn element_for(key: &QueryKey) -> Result<DataElement<InMemDicomObject>, QueryError> {
    let bad = || QueryError::BadValue {
        key: format!("{}", key.tag),
        vr: key.vr.to_string().to_owned(),
        value: key.value.clone(),
    };
    let v = key.value.as_str();
    let value = match key.vr {
        VR::SQ if !v.is_empty() => return Err(bad()),
        VR::SQ => {
            return Ok(DataElement::new(
                key.tag,
                VR::SQ,
                DataSetSequence::<InMemDicomObject>::empty(),
            ))
        }
        _ if v.is_empty() => PrimitiveValue::Empty,
        VR::US => PrimitiveValue::from(v.parse::<u16>().map_err(|_| bad())?),
        VR::SS => PrimitiveValue::from(v.parse::<i16>().map_err(|_| bad())?),
        VR::UL => PrimitiveValue::from(v.parse::<u32>().map_err(|_| bad())?),
        VR::SL => PrimitiveValue::from(v.parse::<i32>().map_err(|_| bad())?),
        VR::FL => PrimitiveValue::from(v.parse::<f32>().map_err(|_| bad())?),
        VR::FD => PrimitiveValue::from(v.parse::<f64>().map_err(|_| bad())?),
        VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::UN | VR::AT => return Err(bad()),
        _ => PrimitiveValue::from(v),
    };
    Ok(DataElement::new(key.tag, key.vr, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item_of(obj: &InMemDicomObject, seq: Tag) -> Vec<InMemDicomObject> {
        obj.element(seq).unwrap().items().unwrap().to_vec()
    }

    #[test]
    fn dotted_keys_name_attributes_in_a_sequence() {
        let k: QueryKey = "ScheduledProcedureStepSequence.Modality=CT".parse().unwrap();
        assert_eq!(k.tag, tags::MODALITY);
        assert_eq!(k.sequences, vec![tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE]);
        assert_eq!(k.value, "CT");
        assert_eq!(k.dotted_name(), "ScheduledProcedureStepSequence.Modality");
        let k: QueryKey = "(0040,0100).0040,0002=20261201-20261202".parse().unwrap();
        assert_eq!(k.tag, tags::SCHEDULED_PROCEDURE_STEP_START_DATE);
        assert_eq!(k.value, "20261201-20261202");
        assert!(matches!(
            "PatientName.Modality".parse::<QueryKey>(),
            Err(QueryError::NotASequence(_))
        ));
        assert!(matches!(
            "ScheduledProcedureStepSequence.Nope".parse::<QueryKey>(),
            Err(QueryError::UnknownKey(_))
        ));
        assert!(matches!(
            "ScheduledProcedureStepSequence.".parse::<QueryKey>(),
            Err(QueryError::UnknownKey(_))
        ));
    }

    #[test]
    fn keys_of_one_sequence_share_one_item() {
        let keys: Vec<QueryKey> = [
            "PatientName",
            "ScheduledProcedureStepSequence.Modality=CT",
            "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=20261201-20261202",
            "ScheduledProcedureStepSequence.ScheduledProtocolCodeSequence.CodeValue",
            "ScheduledProcedureStepSequence",
        ]
        .iter()
        .map(|k| k.parse().unwrap())
        .collect();
        let mut obj = InMemDicomObject::new_empty();
        put_keys(&mut obj, &keys).unwrap();
        let items = item_of(&obj, tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE);
        assert_eq!(items.len(), 1);
        let item = &items[0];
        assert_eq!(item.element(tags::MODALITY).unwrap().to_str().unwrap(), "CT");
        assert_eq!(
            item.element(tags::SCHEDULED_PROCEDURE_STEP_START_DATE)
                .unwrap()
                .to_str()
                .unwrap(),
            "20261201-20261202"
        );
        let codes = item_of(item, tags::SCHEDULED_PROTOCOL_CODE_SEQUENCE);
        assert_eq!(codes.len(), 1);
        assert!(codes[0].element(tags::CODE_VALUE).is_ok());
        assert!(obj.element(tags::PATIENT_NAME).is_ok());
        assert!(obj.element(tags::MODALITY).is_err());
        assert!(obj.element(tags::SPECIFIC_CHARACTER_SET).is_err());
    }

    #[test]
    fn a_sequence_alone_is_universal_and_takes_no_value() {
        let k: QueryKey = "ScheduledProcedureStepSequence".parse().unwrap();
        let mut obj = InMemDicomObject::new_empty();
        put_keys(&mut obj, &[k]).unwrap();
        assert!(item_of(&obj, tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE).is_empty());
        let k: QueryKey = "ScheduledProcedureStepSequence=CT".parse().unwrap();
        assert!(matches!(put_keys(&mut obj, &[k]), Err(QueryError::BadValue { .. })));
    }

    #[test]
    fn find_and_retrieve_identifiers_carry_sequence_keys() {
        let keys: Vec<QueryKey> = [
            "StudyInstanceUID=1.2.3",
            "RequestAttributesSequence.RequestedProcedureID=RP1",
            "RequestAttributesSequence.ScheduledProcedureStepID",
        ]
        .iter()
        .map(|k| k.parse().unwrap())
        .collect();
        let q = FindQuery::new(QueryModel::StudyRoot, QueryLevel::Study, keys).unwrap();
        let id = q.identifier().unwrap();
        let items = item_of(&id, tags::REQUEST_ATTRIBUTES_SEQUENCE);
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0]
                .element(tags::REQUESTED_PROCEDURE_ID)
                .unwrap()
                .to_str()
                .unwrap(),
            "RP1"
        );
        assert!(items[0].element(tags::SCHEDULED_PROCEDURE_STEP_ID).is_ok());
        assert_eq!(
            id.element(tags::SPECIFIC_CHARACTER_SET).unwrap().to_str().unwrap(),
            "ISO_IR 192"
        );
        // A retrieve sends only the keys with a value.
        let id = q.retrieve_identifier().unwrap();
        let items = item_of(&id, tags::REQUEST_ATTRIBUTES_SEQUENCE);
        assert_eq!(items.len(), 1);
        assert!(items[0].element(tags::REQUESTED_PROCEDURE_ID).is_ok());
        assert!(items[0].element(tags::SCHEDULED_PROCEDURE_STEP_ID).is_err());
    }

    #[test]
    fn non_ascii_values_declare_utf8() {
        let k: QueryKey = "ScheduledProcedureStepSequence.ScheduledPerformingPhysicianName=山田*"
            .parse()
            .unwrap();
        let mut obj = InMemDicomObject::new_empty();
        put_keys(&mut obj, &[k]).unwrap();
        assert_eq!(
            obj.element(tags::SPECIFIC_CHARACTER_SET).unwrap().to_str().unwrap(),
            "ISO_IR 192"
        );
    }

    #[test]
    fn keys_by_keyword_and_tag() {
        let k: QueryKey = "PatientName=DOE^*".parse().unwrap();
        assert_eq!(k.tag, tags::PATIENT_NAME);
        assert_eq!(k.vr, VR::PN);
        assert_eq!(k.value, "DOE^*");
        let k: QueryKey = "0010,0020".parse().unwrap();
        assert_eq!(k.tag, tags::PATIENT_ID);
        assert_eq!(k.value, "");
        let k: QueryKey = "(0008,0020)=20200101-20201231".parse().unwrap();
        assert_eq!(k.tag, tags::STUDY_DATE);
        let k: QueryKey = "00100010=".parse().unwrap();
        assert_eq!(k.tag, tags::PATIENT_NAME);
    }

    #[test]
    fn values_may_contain_equals() {
        let k: QueryKey = "StudyDescription=a=b".parse().unwrap();
        assert_eq!(k.value, "a=b");
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(matches!(
            "NotAKeyword".parse::<QueryKey>(),
            Err(QueryError::UnknownKey(_))
        ));
        assert!(matches!(
            "Rows=abc".parse::<QueryKey>().and_then(|k| element_for(&k)),
            Err(QueryError::BadValue { .. })
        ));
    }

    #[test]
    fn identifier_has_level_and_unique_key() {
        let q = FindQuery::new(
            QueryModel::StudyRoot,
            QueryLevel::Series,
            vec!["Modality=CT".parse().unwrap()],
        )
        .unwrap();
        let id = q.identifier().unwrap();
        assert_eq!(
            id.element(tags::QUERY_RETRIEVE_LEVEL).unwrap().to_str().unwrap(),
            "SERIES"
        );
        assert!(id.element(tags::SERIES_INSTANCE_UID).is_ok());
        assert_eq!(id.element(tags::MODALITY).unwrap().to_str().unwrap(), "CT");
    }

    #[test]
    fn patient_level_needs_patient_root() {
        assert_eq!(
            FindQuery::new(QueryModel::StudyRoot, QueryLevel::Patient, vec![]).unwrap_err(),
            QueryError::PatientLevelInStudyRoot
        );
        assert!(FindQuery::new(QueryModel::PatientRoot, QueryLevel::Patient, vec![]).is_ok());
    }
}
