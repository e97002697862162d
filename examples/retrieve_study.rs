//! C-GET through the pool, against the embedded SCP started in-process: store the
//! bundled fixtures, then retrieve one study of two series, one series per
//! association (`with_concurrency`), following the stream of progress, and check
//! that every instance came back under `OUT/<Study>/<Series>/<SOP>.dcm`.
//!
//! ```sh
//! cargo run --example retrieve_study
//! ```
//!
//! Prints UIDs and counts only. Exits 0 when the study came back whole, 1
//! otherwise. The region between `// [guide:retrieve]` and `// [/guide:retrieve]`
//! is quoted in docs/CONNECTION_POOLING.md.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pacs_net::client::{Node, OpOptions, RetrievalItem, RetrieveRequest};
use pacs_net::config::{AdHocTarget, NodeConfig};
use pacs_net::dimse::{FindQuery, QueryKey, QueryLevel, QueryModel, RetrieveEvent};
use pacs_net::scp::{Scp, ScpConfig};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A study of the fixtures (fixtures/README.md): 5 instances in 2 series.
const STUDY: &str = "1.2.826.0.1.3680043.10.1234.1.1";
const INSTANCES: usize = 5;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("retrieve_study: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let scp = Scp::start(ScpConfig::default(), "127.0.0.1:0".parse()?).await?;
    let target: AdHocTarget = format!("{}@127.0.0.1:{}", scp.ae_title(), scp.port()).parse()?;
    let node = Arc::new(Node::new(NodeConfig::ad_hoc(&target), "PACSNET"));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dicom/patient1/study1");
    for file in walk(&fixtures)? {
        node.store_file(&file).await.outcome.result?;
    }
    let out = tempfile::tempdir()?;

    // [guide:retrieve]
    let query = FindQuery::new(
        QueryModel::StudyRoot,
        QueryLevel::Study,
        vec![QueryKey::new(dicom_dictionary_std::tags::STUDY_INSTANCE_UID, STUDY)?],
    )?;
    // One series per association, up to 4 at once (one C-GET when the study has one).
    let request = RetrieveRequest::get(query, out.path()).with_concurrency(4);
    let mut retrieval = node.retrieval(request, OpOptions::default());
    let mut written = Vec::new();
    let report = loop {
        match retrieval.next().await {
            Some(RetrievalItem::Event(RetrieveEvent::Progress(counts))) => {
                println!("{} done, {:?} to go", counts.completed, counts.remaining);
            }
            Some(RetrievalItem::Event(RetrieveEvent::Instance(i))) => match i.path {
                Some(path) => written.push(path), // a Part 10 file, as it arrived
                None => println!("refused {}: {:?}", i.sop_instance_uid, i.error),
            },
            Some(RetrievalItem::Event(RetrieveEvent::Requested { .. })) => {}
            Some(RetrievalItem::Finished(report)) => break report,
            None => return Err("the retrieve ended without an outcome".into()),
        }
    }; // dropping `retrieval` before this point would send C-CANCEL
    let outcome = report.outcome.result?; // the final status, counts, failed UIDs
                                          // [/guide:retrieve]
    println!(
        "final status {}: {} completed, {} failed, {} files",
        outcome.status.hex(),
        outcome.sub_operations.completed,
        outcome.sub_operations.failed,
        written.len()
    );
    node.close(Duration::from_secs(2)).await;
    scp.shutdown().await;
    let in_place = written
        .iter()
        .filter(|p| p.starts_with(out.path().join(STUDY)) && p.exists())
        .count();
    if in_place != INSTANCES || usize::from(outcome.sub_operations.completed) != INSTANCES {
        return Err(format!("expected {INSTANCES} instances under {STUDY}, got {in_place}").into());
    }
    Ok(())
}

/// The files under `dir`, sorted.
fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(d)? {
            let p = e?.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
