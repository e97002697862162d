//! Modality Worklist queries (PS3.4 K.6, SOP class 1.2.840.10008.5.1.4.31): the
//! keys of a C-FIND on the worklist, with the usual return keys when none are
//! given. A worklist identifier has no Query/Retrieve Level.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::association::{uids, ContextRequest, Profile, ProposedContext};

use super::query::{put_query_keys, FindRequest, QueryError, QueryKey};

/// A Modality Worklist C-FIND.
#[derive(Debug, Clone, Default)]
pub struct WorklistQuery {
    /// The keys of the identifier (dotted keys name attributes of the Scheduled
    /// Procedure Step Sequence's item, or of any other sequence).
    pub keys: Vec<QueryKey>,
}

/// The keys a worklist query asks for when none are given: patient, accession,
/// requested procedure, and the Scheduled Procedure Step's modality, station AE,
/// start date/time, description and ID.
const DEFAULT_KEYS: &[(&[dicom_core::Tag], dicom_core::Tag)] = &[
    (&[], tags::PATIENT_NAME),
    (&[], tags::PATIENT_ID),
    (&[], tags::PATIENT_BIRTH_DATE),
    (&[], tags::PATIENT_SEX),
    (&[], tags::ACCESSION_NUMBER),
    (&[], tags::REQUESTED_PROCEDURE_ID),
    (&[], tags::REQUESTED_PROCEDURE_DESCRIPTION),
    (&[], tags::STUDY_INSTANCE_UID),
    (&[tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE], tags::MODALITY),
    (
        &[tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE],
        tags::SCHEDULED_STATION_AE_TITLE,
    ),
    (
        &[tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE],
        tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
    ),
    (
        &[tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE],
        tags::SCHEDULED_PROCEDURE_STEP_START_TIME,
    ),
    (
        &[tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE],
        tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION,
    ),
    (
        &[tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE],
        tags::SCHEDULED_PROCEDURE_STEP_ID,
    ),
];

impl WorklistQuery {
    /// A worklist query with `keys` (none: the usual worklist keys).
    pub fn new(keys: Vec<QueryKey>) -> Self {
        WorklistQuery { keys }
    }

    /// The keys the identifier asks for: the user's, or the usual worklist keys.
    pub fn effective_keys(&self) -> Vec<QueryKey> {
        if !self.keys.is_empty() {
            return self.keys.clone();
        }
        DEFAULT_KEYS
            .iter()
            .filter_map(|(seq, tag)| QueryKey::new(*tag, "").ok().map(|k| k.in_sequences(seq.to_vec())))
            .collect()
    }
}

impl FindRequest for WorklistQuery {
    fn sop_class(&self) -> &'static str {
        uids::MODALITY_WORKLIST_FIND
    }

    fn level_name(&self) -> &'static str {
        "WORKLIST"
    }

    fn identifier(&self) -> Result<InMemDicomObject, QueryError> {
        let mut obj = InMemDicomObject::new_empty();
        put_query_keys(&mut obj, &self.effective_keys())?;
        Ok(obj)
    }

    /// Worklist and Verification (for the pool's validation) in a profile of their
    /// own: the default profile, used for everything else, is not made longer.
    fn context(&self) -> ContextRequest {
        ContextRequest {
            abstract_syntax: uids::MODALITY_WORKLIST_FIND.to_string(),
            transfer_syntaxes: uids::UNCOMPRESSED_LE.iter().map(|s| s.to_string()).collect(),
            profile: Profile::Custom(vec![
                ProposedContext::new(uids::MODALITY_WORKLIST_FIND, &uids::UNCOMPRESSED_LE),
                ProposedContext::new(uids::VERIFICATION, &uids::UNCOMPRESSED_LE),
            ]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_keys_put_the_step_in_one_item_and_no_level() {
        let id = WorklistQuery::default().identifier().unwrap();
        assert!(id.element(tags::QUERY_RETRIEVE_LEVEL).is_err());
        assert!(id.element(tags::PATIENT_NAME).is_ok());
        assert!(id.element(tags::ACCESSION_NUMBER).is_ok());
        let items = id
            .element(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()
            .to_vec();
        assert_eq!(items.len(), 1);
        for t in [
            tags::MODALITY,
            tags::SCHEDULED_STATION_AE_TITLE,
            tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
            tags::SCHEDULED_PROCEDURE_STEP_START_TIME,
            tags::SCHEDULED_PROCEDURE_STEP_DESCRIPTION,
            tags::SCHEDULED_PROCEDURE_STEP_ID,
        ] {
            assert!(items[0].element(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn given_keys_replace_the_defaults() {
        let q = WorklistQuery::new(vec!["ScheduledProcedureStepSequence.Modality=MR".parse().unwrap()]);
        let id = q.identifier().unwrap();
        assert!(id.element(tags::PATIENT_NAME).is_err());
        let items = id
            .element(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()
            .to_vec();
        assert_eq!(items[0].element(tags::MODALITY).unwrap().to_str().unwrap(), "MR");
        assert_eq!(q.sop_class(), "1.2.840.10008.5.1.4.31");
    }
}
