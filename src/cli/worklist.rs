//! The worklist part of `pacs-net demo`: the embedded SCP answers Modality
//! Worklist queries from the bundled worklist files (fixtures/worklist).

use std::ops::ControlFlow;
use std::path::PathBuf;

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::client::Node;
use crate::dimse::{QueryKey, WorklistQuery};

/// The bundled worklist files, as the SCP's worklist folder (None when absent).
pub(super) fn bundled_folder() -> Option<crate::scp::WorklistFolder> {
    let here = PathBuf::from("fixtures/worklist");
    let dir = if here.is_dir() {
        here
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/worklist")
    };
    crate::scp::WorklistFolder::open(&dir).ok()
}

/// Worklist C-FIND of the CT steps scheduled 2026-12-01 to 2026-12-31; whether it worked.
pub(super) async fn demo_worklist(node: &Node) -> bool {
    let keys: Result<Vec<QueryKey>, _> = [
        "PatientName",
        "AccessionNumber",
        "ScheduledProcedureStepSequence.Modality=CT",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=20261201-20261231",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepStartTime",
        "ScheduledProcedureStepSequence.ScheduledStationAETitle",
    ]
    .iter()
    .map(|k| k.parse())
    .collect();
    let keys = match keys {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return false;
        }
    };
    let query = WorklistQuery::new(keys);
    let mut n = 0;
    let out = node
        .worklist(&query, |m| {
            n += 1;
            println!("   {}", describe(&m));
            ControlFlow::Continue(())
        })
        .await;
    match out.result {
        Ok(o) => {
            println!("   {n} scheduled step(s), final status {}", o.status.hex());
            true
        }
        Err(e) => {
            eprintln!("error: worklist C-FIND: {e}");
            false
        }
    }
}

/// `date time modality station accession name` of one worklist item.
fn describe(m: &InMemDicomObject) -> String {
    let text = |o: &InMemDicomObject, t| {
        o.element(t)
            .ok()
            .and_then(|e| e.to_str().ok().map(|s| s.trim().to_string()))
            .unwrap_or_default()
    };
    let step = m
        .element(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        .ok()
        .and_then(|e| e.items())
        .and_then(|i| i.first())
        .cloned()
        .unwrap_or_else(InMemDicomObject::new_empty);
    format!(
        "{} {} {} {} {} {}",
        text(&step, tags::SCHEDULED_PROCEDURE_STEP_START_DATE),
        text(&step, tags::SCHEDULED_PROCEDURE_STEP_START_TIME),
        text(&step, tags::MODALITY),
        text(&step, tags::SCHEDULED_STATION_AE_TITLE),
        text(m, tags::ACCESSION_NUMBER),
        text(m, tags::PATIENT_NAME),
    )
}
