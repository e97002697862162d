//! Modality Worklist C-FIND through the pool, against the embedded SCP started
//! in-process with the bundled worklist (fixtures/worklist): the usual worklist
//! keys, then the CT steps of a date range with sequence keys.
//!
//! ```sh
//! cargo run --example worklist
//! ```
//!
//! Prints accession numbers, modalities, stations and dates only: patient names
//! are asked for (to show they decode) but not printed. Exits 0 when the queries
//! return what the fixtures hold, 1 otherwise. The region between
//! `// [guide:worklist]` and `// [/guide:worklist]` is quoted in
//! docs/CONNECTION_POOLING.md.

use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use pacs_net::client::{Client, Node};
use pacs_net::config::Config;
use pacs_net::dimse::{QueryKey, WorklistQuery};
use pacs_net::scp::{Scp, ScpConfig, WorklistFolder};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What fixtures/worklist holds (fixtures/README.md).
const ITEMS: usize = 3;
const CT_IN_EARLY_DECEMBER: usize = 1;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PACS_NET_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let folder = WorklistFolder::open(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/worklist"))?;
    let scp = Scp::start(
        ScpConfig {
            worklist: Some(folder),
            ..ScpConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    let client = Client::new(Config::default(), None);
    let node = client.node(&format!("{}@127.0.0.1:{}", scp.ae_title(), scp.port()))?;

    let all = everything(&node).await?;
    println!("{} scheduled steps", all.len());
    if all.len() != ITEMS {
        return Err(format!("expected {ITEMS} worklist items, got {}", all.len()).into());
    }
    let ct = ct_steps(&node).await?;
    for m in &ct {
        println!("{}", describe(m));
    }
    if ct.len() != CT_IN_EARLY_DECEMBER {
        return Err(format!("expected {CT_IN_EARLY_DECEMBER} CT step, got {}", ct.len()).into());
    }
    client.close(Duration::from_secs(5)).await;
    scp.shutdown().await;
    Ok(())
}

/// The usual worklist keys (no keys given).
async fn everything(node: &Node) -> Result<Vec<InMemDicomObject>, Error> {
    let mut items = Vec::new();
    node.worklist(&WorklistQuery::default(), |m| {
        items.push(m);
        ControlFlow::Continue(())
    })
    .await
    .result?;
    Ok(items)
}

async fn ct_steps(node: &Node) -> Result<Vec<InMemDicomObject>, Error> {
    // [guide:worklist]
    // Dotted keys name attributes of the Scheduled Procedure Step's one item.
    let keys = [
        "PatientName",
        "AccessionNumber",
        "ScheduledProcedureStepSequence.Modality=CT",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=20261201-20261210",
        "ScheduledProcedureStepSequence.ScheduledStationAETitle",
    ]
    .iter()
    .map(|k| k.parse())
    .collect::<Result<Vec<QueryKey>, _>>()?;
    let mut steps = Vec::new();
    let out = node
        .worklist(&WorklistQuery::new(keys), |m| {
            steps.push(m); // text already decoded from its Specific Character Set
            ControlFlow::Continue(())
        })
        .await;
    // A FindOutcome, as for find: final status, matches, whether C-CANCEL was sent.
    let outcome = out.result?;
    // [/guide:worklist]
    println!("final status {}", outcome.status.hex());
    Ok(steps)
}

/// `accession modality station date` of a step.
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
        "{} {} {} {}",
        text(m, tags::ACCESSION_NUMBER),
        text(&step, tags::MODALITY),
        text(&step, tags::SCHEDULED_STATION_AE_TITLE),
        text(&step, tags::SCHEDULED_PROCEDURE_STEP_START_DATE),
    )
}
