//! C-FIND queries: information model, level, and keys given by keyword or tag
//! (`PatientName`, `0010,0010`, `(0010,0010)`), with optional values (`KEY=VALUE`,
//! wildcards passed through), turned into an identifier data set.

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
        })
    }
}

impl FromStr for QueryKey {
    type Err = QueryError;
    /// `KEY`, `KEY=` or `KEY=VALUE`; the value is everything after the first `=`.
    fn from_str(s: &str) -> Result<Self, QueryError> {
        let (key, value) = s.split_once('=').unwrap_or((s, ""));
        let key = key.trim();
        let tag = parse_tag(key).ok_or_else(|| QueryError::UnknownKey(key.to_string()))?;
        QueryKey::new(tag, value)
    }
}

fn parse_tag(key: &str) -> Option<Tag> {
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
        if !keys.iter().any(|k| k.tag == self.level.unique_key()) {
            keys.push(QueryKey::new(self.level.unique_key(), "")?);
        }
        let mut non_ascii = false;
        for key in &keys {
            non_ascii |= !key.value.is_ascii();
            obj.put(element_for(key)?);
        }
        if non_ascii {
            obj.put(DataElement::new(
                tags::SPECIFIC_CHARACTER_SET,
                VR::CS,
                PrimitiveValue::from("ISO_IR 192"),
            ));
        }
        Ok(obj)
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
        let mut non_ascii = false;
        for key in self.keys.iter().filter(|k| !k.value.is_empty()) {
            non_ascii |= !key.value.is_ascii();
            obj.put(element_for(key)?);
        }
        if non_ascii {
            obj.put(DataElement::new(
                tags::SPECIFIC_CHARACTER_SET,
                VR::CS,
                PrimitiveValue::from("ISO_IR 192"),
            ));
        }
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
