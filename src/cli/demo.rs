//! `pacs-net scp` and `pacs-net demo`: the embedded SCP on its own, and a tour of
//! echo, store and find against it through the pool.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use crate::client::Client;
use crate::config::{self, Config};
use crate::dimse::{FindQuery, QueryLevel, QueryModel};
use crate::scp::{Scp, ScpConfig, StorageListener};

use super::exit;

#[allow(clippy::too_many_arguments)]
pub(super) async fn scp(
    port: u16,
    ae_title: &str,
    storage: Option<PathBuf>,
    bind: &str,
    response_delay: Option<Duration>,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    move_dest: &[String],
    worklist: Option<crate::scp::WorklistFolder>,
    commit_report: crate::scp::CommitReportMode,
) -> u8 {
    let mut move_destinations = std::collections::BTreeMap::new();
    for d in move_dest {
        match parse_move_dest(d) {
            Ok((ae, host, port)) => {
                move_destinations.insert(ae, (host, port));
            }
            Err(e) => {
                eprintln!("error: --move-dest {d}: {e}");
                return exit::USAGE;
            }
        }
    }
    if let Err(reason) = config::validate_ae_title(ae_title) {
        eprintln!("error: --ae-title {ae_title:?}: {reason}");
        return exit::USAGE;
    }
    // `::1` and `[::1]` alike: IPv6 needs brackets before the port.
    let addr: SocketAddr = match config::host_port(bind, port).parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: --bind {bind}: {e}");
            return exit::USAGE;
        }
    };
    let cfg = ScpConfig {
        ae_title: ae_title.to_string(),
        storage_dir: storage,
        behavior: crate::scp::Behavior {
            response_delay,
            ..Default::default()
        },
        tls,
        move_destinations,
        worklist,
        commit_report,
        ..ScpConfig::default()
    };
    let tls_words = if cfg.tls.is_some() { " (DICOM TLS)" } else { "" };
    let scp = match Scp::start(cfg, addr).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return exit::FAILED;
        }
    };
    println!("SCP {} listening on {}{tls_words}", scp.ae_title(), scp.local_addr());
    scp.run_until(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    exit::OK
}

/// `AET=HOST:PORT`.
fn parse_move_dest(s: &str) -> Result<(String, String, u16), String> {
    let (ae, addr) = s.split_once('=').ok_or("expected AET=HOST:PORT")?;
    config::validate_ae_title(ae.trim()).map_err(|e| format!("AE title {ae:?}: {e}"))?;
    let (host, port) = addr.rsplit_once(':').ok_or("expected AET=HOST:PORT")?;
    let port: u16 = port.parse().map_err(|_| format!("bad port {port:?}"))?;
    if host.is_empty() || port == 0 {
        return Err("expected AET=HOST:PORT".into());
    }
    Ok((ae.trim().to_string(), host.trim_matches(['[', ']']).to_string(), port))
}

/// The bundled fixtures: next to the binary's source tree when run from the repo.
fn fixtures_dir() -> PathBuf {
    let here = PathBuf::from("fixtures/dicom");
    if here.is_dir() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/dicom")
}

pub(super) async fn demo(calling_ae: Option<String>) -> u8 {
    let worklist = super::worklist::bundled_folder();
    // Our own storage listener, the destination of the demo's C-MOVE.
    let our_ae = calling_ae
        .clone()
        .unwrap_or_else(|| config::DEFAULT_LOCAL_AE_TITLE.to_string());
    let moved = std::env::temp_dir().join(format!("pacs-net-demo-move-{}", std::process::id()));
    let mut listener = match StorageListener::start(&our_ae, ([127, 0, 0, 1], 0).into(), &moved).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot start the storage listener: {e}");
            return exit::FAILED;
        }
    };
    let scp_config = ScpConfig {
        move_destinations: [(our_ae.clone(), ("127.0.0.1".to_string(), listener.local_addr().port()))].into(),
        worklist: worklist.clone(),
        ..ScpConfig::default()
    };
    let scp = match Scp::start(scp_config, ([127, 0, 0, 1], 0).into()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start the embedded SCP: {e}");
            return exit::FAILED;
        }
    };
    println!("== embedded SCP {} on {}", scp.ae_title(), scp.local_addr());
    let json = format!(
        r#"{{"nodes": {{"DEMO": {{"ae_title": "{}", "host": "127.0.0.1", "port": {}, "pool": "demo"}}}},
            "network": {{"connection_pools": {{"demo": {{"min_size": 1, "max_size": 4}}}},
                        "retry": {{"max_attempts": 3, "initial_delay_ms": 100}}}}}}"#,
        scp.ae_title(),
        scp.port()
    );
    let config = match Config::from_json_str(&json) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: demo config: {e}");
            return exit::FAILED;
        }
    };
    let client = Client::new(config, calling_ae);
    let node = match client.node("DEMO") {
        Ok(n) => n,
        Err(e) => return super::target_error(e),
    };
    let mut failed = false;

    println!("== C-ECHO x10 through the pool");
    let mut latencies = Vec::new();
    for _ in 0..10 {
        let t = std::time::Instant::now();
        let out = node.echo().await;
        match out.result {
            Ok(status) => latencies.push((t.elapsed(), status)),
            Err(e) => {
                failed = true;
                eprintln!("error: C-ECHO: {e}");
            }
        }
    }
    if let Some((d, status)) = latencies.last() {
        println!(
            "   {} ok, last status {}, last latency {:.3} ms",
            latencies.len(),
            status.hex(),
            d.as_secs_f64() * 1000.0
        );
    }

    println!("== C-STORE of the bundled fixtures ({})", fixtures_dir().display());
    let files: Vec<PathBuf> = walkdir::WalkDir::new(fixtures_dir())
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    let mut stored = 0;
    for path in &files {
        let out = node.store_file(path).await;
        match &out.outcome.result {
            Ok(rsp) => {
                stored += 1;
                println!(
                    "   {} {} ({} attempt(s))",
                    rsp.status.hex(),
                    path.display(),
                    out.outcome.attempts
                );
            }
            Err(e) => {
                failed = true;
                eprintln!("error {}: {e}", path.display());
            }
        }
    }
    println!("   {stored} of {} files stored", files.len());

    println!("== C-FIND studies (Study Root, STUDY level)");
    let query = match FindQuery::new(QueryModel::StudyRoot, QueryLevel::Study, vec![]) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILED;
        }
    };
    let mut n = 0;
    let out = node
        .find(&query, |m| {
            n += 1;
            let uid = m
                .element(dicom_dictionary_std::tags::STUDY_INSTANCE_UID)
                .ok()
                .and_then(|e| e.to_str().ok().map(|s| s.to_string()))
                .unwrap_or_default();
            println!("   study {uid}");
            ControlFlow::Continue(())
        })
        .await;
    match out.result {
        Ok(o) => println!("   {n} studies, final status {}", o.status.hex()),
        Err(e) => {
            failed = true;
            eprintln!("error: C-FIND: {e}");
        }
    }

    if let Some(w) = &worklist {
        println!(
            "== Modality Worklist C-FIND: CT steps in December 2026 ({})",
            w.dir().display()
        );
        failed |= !super::worklist::demo_worklist(&node).await;
    }

    println!("== C-GET of study 1.2.826.0.1.3680043.10.1234.1.1 back from the SCP");
    failed |= !demo_get(&node).await;

    println!(
        "== C-MOVE of the same study to our own AE {our_ae} (listener on {})",
        listener.local_addr()
    );
    failed |= !demo_move(&node, &our_ae, &mut listener, &moved).await;
    listener.shutdown().await;

    println!("== Storage Commitment (N-ACTION, report on the same association): the fixtures and one instance the SCP never got");
    failed |= !super::commit::demo_commit(&node, &files).await;

    println!("== pool and breaker statistics");
    print!(
        "{}",
        super::output::render_stats(&client.stats(), super::args::StatsFormat::Table)
    );
    client.close(Duration::from_secs(5)).await;
    let s = scp.stats();
    println!(
        "== SCP saw {} association(s), {} released, {} aborted; {} echoes, {} stores, {} finds, {} gets, {} moves",
        s.accepted,
        s.released,
        s.aborted_by_peer,
        s.echoes,
        s.store_requests,
        s.find_requests,
        s.get_requests,
        s.move_requests
    );
    scp.shutdown().await;
    if failed {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// The demo's study, as a Study Root query at STUDY level.
fn demo_study() -> Option<FindQuery> {
    let key = "StudyInstanceUID=1.2.826.0.1.3680043.10.1234.1.1".parse();
    match key.map(|k| FindQuery::new(QueryModel::StudyRoot, QueryLevel::Study, vec![k])) {
        Ok(Ok(q)) => Some(q),
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            None
        }
        Err(e) => {
            eprintln!("error: {e}");
            None
        }
    }
}

/// C-MOVE the demo's study to our own listener, which files what arrives under
/// `dir` (removed afterwards); whether every instance came.
async fn demo_move(
    node: &std::sync::Arc<crate::client::Node>,
    our_ae: &str,
    listener: &mut StorageListener,
    dir: &std::path::Path,
) -> bool {
    use futures::StreamExt;
    let Some(query) = demo_study() else {
        return false;
    };
    let mut stream = node.move_to(query, our_ae, crate::client::OpOptions::default());
    let mut ok = false;
    let mut completed = 0;
    while let Some(item) = stream.next().await {
        if let crate::client::RetrievalItem::Finished(report) = item {
            match &report.outcome.result {
                Ok(o) => {
                    ok = o.sub_operations.failed == 0;
                    completed = o.sub_operations.completed;
                    println!(
                        "   {} completed, {} failed, final status {}",
                        o.sub_operations.completed,
                        o.sub_operations.failed,
                        o.status.hex()
                    );
                }
                Err(e) => eprintln!("error: C-MOVE: {e}"),
            }
        }
    }
    // The SCP answers each sub-operation after our listener filed it.
    let mut received = 0;
    while let Some(i) = listener.try_next() {
        if crate::scp::belongs_to_move(&i, our_ae, &[]) {
            received += 1;
            let file = i
                .path
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|f| f.to_string_lossy().to_string());
            println!("   received {} ({} bytes)", file.unwrap_or_default(), i.size);
        }
    }
    println!("   the listener filed {received} instance(s) under <study>/<series>/");
    let _ = std::fs::remove_dir_all(dir);
    ok && received == usize::from(completed)
}

/// C-GET one study into a temporary folder (removed afterwards); whether it worked.
async fn demo_get(node: &std::sync::Arc<crate::client::Node>) -> bool {
    use futures::StreamExt;
    let Some(query) = demo_study() else {
        return false;
    };
    let out = std::env::temp_dir().join(format!("pacs-net-demo-get-{}", std::process::id()));
    let mut stream = node.get(query, &out, crate::client::OpOptions::default());
    let mut ok = false;
    while let Some(item) = stream.next().await {
        match item {
            crate::client::RetrievalItem::Event(crate::dimse::RetrieveEvent::Instance(i)) => {
                let shown = i
                    .path
                    .as_ref()
                    .and_then(|p| p.strip_prefix(&out).ok())
                    .and_then(|p| p.iter().nth(1).map(|series| (series.to_owned(), p.file_name())))
                    .map(|(series, file)| {
                        format!(
                            "series {} / {}",
                            series.to_string_lossy(),
                            file.map(|f| f.to_string_lossy().to_string()).unwrap_or_default()
                        )
                    })
                    .unwrap_or_else(|| "(not written)".into());
                println!("   {} {shown} ({} bytes)", i.status.hex(), i.bytes);
            }
            crate::client::RetrievalItem::Event(_) => {}
            crate::client::RetrievalItem::Finished(report) => match &report.outcome.result {
                Ok(o) => {
                    ok = o.sub_operations.failed == 0;
                    println!(
                        "   {} completed, {} failed, final status {}",
                        o.sub_operations.completed,
                        o.sub_operations.failed,
                        o.status.hex()
                    );
                }
                Err(e) => eprintln!("error: C-GET: {e}"),
            },
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    ok
}
