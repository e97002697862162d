//! C-FIND through the pool, against the embedded SCP started in-process: store the
//! bundled fixtures, then query studies (Study Root, STUDY level, matches through a
//! callback), the series of one study (SERIES level, matches as a `Stream`, with a
//! deadline and a priority), and the first two studies only (C-CANCEL after two).
//!
//! ```sh
//! cargo run --example find_studies
//! ```
//!
//! Prints UIDs, dates, modalities and descriptions only: no patient names or IDs are
//! asked for or printed. Exits 0 when every query returns what the fixtures hold, 1
//! otherwise. The regions between `// [guide:X]` and `// [/guide:X]` are quoted in
//! docs/CONNECTION_POOLING.md.

use std::ops::ControlFlow;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use futures::StreamExt;
use pacs_net::client::{Client, Node, OpOptions};
use pacs_net::config::Config;
use pacs_net::dimse::{FindQuery, QueryKey, QueryLevel, QueryModel};
use pacs_net::pool::Priority;
use pacs_net::scp::{Scp, ScpConfig};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// What the fixtures hold (fixtures/README.md).
const STUDIES: usize = 4;
const SERIES_IN_FIRST_STUDY: usize = 2;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PACS_NET_LOG"))
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("find_studies: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let scp = Scp::start(ScpConfig::default(), "127.0.0.1:0".parse()?).await?;
    println!("embedded SCP {} on {}", scp.ae_title(), scp.local_addr());
    let config = Config::from_json_str(
        &serde_json::json!({
            "nodes": {
                "MAIN_PACS": {"ae_title": scp.ae_title(), "host": "127.0.0.1", "port": scp.port(), "pool": "main_pacs"}
            },
            "network": {"connection_pools": {"main_pacs": {"max_size": 2}}}
        })
        .to_string(),
    )?;
    let client = Client::new(config, None);
    let node = client.node("MAIN_PACS")?;

    store_fixtures(&node).await?;

    // [guide:find]
    let query = FindQuery::new(
        QueryModel::StudyRoot,
        QueryLevel::Study,
        vec![
            "StudyInstanceUID".parse()?, // KEY alone = return it, like `-k KEY` on the CLI
            "StudyDate".parse()?,
            "ModalitiesInStudy".parse()?,
            "StudyDescription".parse()?,
        ],
    )?;
    let mut studies: Vec<InMemDicomObject> = Vec::new();
    let out = node
        .find(&query, |m| {
            studies.push(m); // each match as it arrives
            ControlFlow::Continue(())
        })
        .await;
    // FindOutcome: the final status, the number of matches, whether C-CANCEL was sent.
    let outcome = out.result?;
    // [/guide:find]
    println!(
        "== C-FIND STUDY level (Study Root): {} matches, final status {}, {} attempt(s)",
        outcome.matches,
        outcome.status.hex(),
        out.attempts
    );
    studies.sort_by_key(|s| text(s, tags::STUDY_INSTANCE_UID));
    for s in &studies {
        println!(
            "   study {}  {}  {:<6} {}",
            text(s, tags::STUDY_INSTANCE_UID),
            text(s, tags::STUDY_DATE),
            text(s, tags::MODALITIES_IN_STUDY),
            text(s, tags::STUDY_DESCRIPTION)
        );
    }
    ensure(studies.len() == STUDIES, &format!("{STUDIES} studies"))?;
    ensure(
        studies.iter().all(|s| !text(s, tags::STUDY_DESCRIPTION).is_empty()),
        "every study has a description",
    )?;

    let study_uid = text(&studies[0], tags::STUDY_INSTANCE_UID);
    // [guide:stream]
    let query = FindQuery::new(
        QueryModel::StudyRoot,
        QueryLevel::Series,
        vec![
            QueryKey::new(tags::STUDY_INSTANCE_UID, &study_uid)?, // matching key
            "SeriesInstanceUID".parse()?,
            "SeriesNumber".parse()?,
            "Modality".parse()?,
            "SeriesDescription".parse()?,
        ],
    )?;
    // Everything within 10 s: no retry starts after it, an attempt under way is cut
    // short (its association aborted); served first when callers queue.
    let opts = OpOptions {
        deadline: Some(Duration::from_secs(10)),
        priority: Priority::High,
    };
    // A Stream of matches (node: Arc<Node>); dropping it early sends C-CANCEL.
    let mut matches = std::pin::pin!(node.find_stream(query, opts));
    let mut series = Vec::new();
    while let Some(m) = matches.next().await {
        series.push(m?); // a failure ends the stream with one Err
    }
    // [/guide:stream]
    println!(
        "== C-FIND SERIES level of study {study_uid} (as a stream): {} matches",
        series.len()
    );
    series.sort_by_key(|s| text(s, tags::SERIES_NUMBER).parse::<u32>().unwrap_or(0));
    for s in &series {
        println!(
            "   series {}  #{}  {}  {}",
            text(s, tags::SERIES_INSTANCE_UID),
            text(s, tags::SERIES_NUMBER),
            text(s, tags::MODALITY),
            text(s, tags::SERIES_DESCRIPTION)
        );
    }
    ensure(
        series.len() == SERIES_IN_FIRST_STUDY,
        &format!("{SERIES_IN_FIRST_STUDY} series in {study_uid}"),
    )?;
    ensure(
        series.iter().all(|s| text(s, tags::STUDY_INSTANCE_UID) == study_uid),
        "every series belongs to the study asked for",
    )?;

    // [guide:cancel]
    let query = FindQuery::new(
        QueryModel::StudyRoot,
        QueryLevel::Study,
        vec!["StudyInstanceUID".parse()?],
    )?;
    let mut first = Vec::new();
    let out = node
        .find(&query, |m| {
            first.push(text(&m, tags::STUDY_INSTANCE_UID));
            if first.len() == 2 {
                ControlFlow::Break(()) // sends C-CANCEL; the association stays usable
            } else {
                ControlFlow::Continue(())
            }
        })
        .await;
    let outcome = out.result?;
    // [/guide:cancel]
    println!(
        "== C-FIND with a limit of 2: {} matches, cancelled {}, final status {} ({})",
        outcome.matches,
        outcome.cancelled,
        outcome.status.hex(),
        outcome.status.meaning()
    );
    for uid in &first {
        println!("   study {uid}");
    }
    ensure(outcome.cancelled && first.len() == 2, "C-CANCEL after two matches")?;

    client.close(Duration::from_secs(5)).await;
    let p = node.stats().pool;
    println!(
        "pool: created {}, acquisitions {}, peak active {}, stale redos {}",
        p.created, p.acquisitions, p.peak_active, p.stale_redos
    );
    scp.shutdown().await;
    Ok(())
}

async fn store_fixtures(node: &Node) -> Result<(), Error> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dicom");
    let mut stored = 0;
    for entry in walkdir::WalkDir::new(&dir).sort_by_file_name() {
        let entry = entry?;
        if !entry.file_type().is_file() {
            continue;
        }
        let out = node.store_file(entry.path()).await;
        if let Err(e) = out.outcome.result {
            return Err(format!("C-STORE {}: {e}", entry.path().display()).into());
        }
        stored += 1;
    }
    println!("== stored {stored} instances from {}", dir.display());
    Ok(())
}

/// An attribute as text (multiple values joined by `\`), or "" where absent.
fn text(obj: &InMemDicomObject, tag: dicom_core::Tag) -> String {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

fn ensure(cond: bool, what: &str) -> Result<(), Error> {
    if cond {
        println!("   ok: {what}");
        Ok(())
    } else {
        Err(format!("check failed: {what}").into())
    }
}
