//! Storage Commitment (Push Model) through the pool, against the embedded SCP
//! started in-process, which reports on a new association to our listener (as
//! Orthanc does): store the bundled fixtures, ask the SCP to commit them plus one
//! instance it never received, and check that the stored ones are committed and
//! the other one is failed with reason 0112 (no such object instance).
//!
//! ```sh
//! cargo run --example storage_commitment
//! ```
//!
//! Prints UIDs and statuses only. Exits 0 when the outcome is the one expected,
//! 1 otherwise. The region between `// [guide:commit]` and `// [/guide:commit]` is
//! quoted in docs/CONNECTION_POOLING.md.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use pacs_net::client::{CommitOptions, Commitment, Node};
use pacs_net::config::{AdHocTarget, NodeConfig};
use pacs_net::dimse::SopRef;
use pacs_net::scp::{CommitReportMode, CommitmentListener, Scp, ScpConfig};

type Error = Box<dyn std::error::Error + Send + Sync>;

const OUR_AE: &str = "PACSNET";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("storage_commitment: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    // Reports a PACS sends on an association of its own arrive here (its AE title
    // must be in the PACS's modality list with this host and port).
    let listener = CommitmentListener::start(OUR_AE, "127.0.0.1:0".parse()?).await?;
    let scp = Scp::start(
        ScpConfig {
            commit_report: CommitReportMode::NewAssociation {
                port: Some(listener.local_addr().port()),
            },
            ..ScpConfig::default()
        },
        "127.0.0.1:0".parse()?,
    )
    .await?;
    println!(
        "embedded SCP {} on {}; our listener on {}",
        scp.ae_title(),
        scp.local_addr(),
        listener.local_addr()
    );
    let target: AdHocTarget = format!("{}@127.0.0.1:{}", scp.ae_title(), scp.port()).parse()?;
    let node = Arc::new(Node::new(NodeConfig::ad_hoc(&target), OUR_AE));

    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dicom/patient1");
    let mut stored = Vec::new();
    for entry in walk(&fixtures)? {
        let out = node.store_file(&entry).await;
        if let (Ok(_), Some(file)) = (&out.outcome.result, out.file) {
            stored.push(file);
        }
    }
    println!("{} instances stored", stored.len());

    // [guide:commit]
    let opts = CommitOptions {
        router: Some(listener.router().clone()),
        timeout: Duration::from_secs(30),
        ..CommitOptions::default()
    };
    let mut instances: Vec<SopRef> = stored
        .iter()
        .map(|f| SopRef {
            sop_class_uid: f.sop_class_uid.clone(),
            sop_instance_uid: f.sop_instance_uid.clone(),
        })
        .collect();
    // One the PACS never received: it will be failed, with reason 0112.
    instances.push(SopRef {
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        sop_instance_uid: "1.2.826.0.1.3680043.10.1234.99.1".into(),
    });
    let report = node.commit(instances, &opts).await;
    let (mut committed, mut failed, mut unknown) = (0, 0, 0);
    for i in &report.instances {
        match &i.commitment {
            Commitment::Committed => committed += 1, // safe to delete the local copy
            Commitment::Failed { reason } => {
                // send it again; reason is PS3.4 J.3.3.1
                println!("failed: {} ({reason:04X})", i.instance.sop_instance_uid);
                failed += 1;
            }
            Commitment::Unknown => unknown += 1, // no report in time: keep it, ask again later
        }
    }
    // [/guide:commit]
    println!("{committed} committed, {failed} failed, {unknown} unknown");
    node.close(Duration::from_secs(2)).await;
    scp.shutdown().await;
    listener.shutdown().await;
    if committed != stored.len() || failed != 1 || unknown != 0 {
        return Err(format!("expected {} committed, 1 failed, 0 unknown", stored.len()).into());
    }
    Ok(())
}

/// The files under `dir`, sorted.
fn walk(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
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
