//! `pacs-net store`: C-STORE every file under the given paths through the node's
//! pool, C at a time; a failing file never stops the others, every outcome is
//! reported (stderr, summary line, `--report` JSON).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;

use crate::client::{open_instance, Client, OpError, OpOptions, OperationError, StoreOutcome};
use crate::resilience::ExecError;

use super::exit;

pub(super) struct StoreOpts {
    pub target: String,
    pub paths: Vec<PathBuf>,
    pub concurrency: usize,
    pub report: Option<PathBuf>,
    pub progress: bool,
}

/// `--report` JSON (spec: "store --report FILE").
#[derive(Debug, Serialize)]
struct Report {
    target: String,
    files_total: usize,
    stored: usize,
    warnings: usize,
    failed: usize,
    bytes: u64,
    elapsed_ms: u128,
    results: Vec<FileResult>,
}

#[derive(Debug, Serialize)]
struct FileResult {
    path: String,
    sop_class_uid: Option<String>,
    sop_instance_uid: Option<String>,
    outcome: &'static str,
    status: Option<String>,
    attempts: u32,
    error: Option<String>,
    /// What the user should know about a file that was stored all the same (its
    /// file meta disagreed with its data set, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// Input paths expanded: files as given, directories walked (sorted), and paths
/// that cannot be read kept as failures.
fn collect(paths: &[PathBuf]) -> Vec<(PathBuf, Option<String>)> {
    let mut out = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                let walker = walkdir::WalkDir::new(p).follow_links(true).sort_by_file_name();
                for entry in walker {
                    match entry {
                        Ok(e) if e.file_type().is_file() => out.push((e.into_path(), None)),
                        Ok(_) => {}
                        Err(e) => {
                            let path = e.path().map(|x| x.to_path_buf()).unwrap_or_else(|| p.clone());
                            out.push((path, Some(format!("cannot read: {e}"))));
                        }
                    }
                }
            }
            Ok(_) => out.push((p.clone(), None)),
            Err(e) => out.push((p.clone(), Some(format!("cannot read: {e}")))),
        }
    }
    out
}

pub(super) async fn store(client: Arc<Client>, opts: StoreOpts) -> u8 {
    let node = match client.node(&opts.target) {
        Ok(n) => n,
        Err(e) => return super::target_error(e),
    };
    let files = collect(&opts.paths);
    let bar = if opts.progress && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(files.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} files {per_sec} {msg}",
        ) {
            bar.set_style(style);
        }
        Some(bar)
    } else {
        None
    };
    let started = Instant::now();
    // Files are opened and checked (on the blocking pool) a few ahead of the ones
    // being sent, so that reading the next file overlaps the current exchange.
    let mut indexed: Vec<(usize, FileResult, u64)> = futures::stream::iter(files.into_iter().enumerate())
        .map(|(i, (path, read_error))| async move {
            let opened = match read_error {
                Some(reason) => Err(reason),
                None => Ok(open_instance(&path).await),
            };
            (i, path, opened)
        })
        .buffered(opts.concurrency + 2)
        .map(|(i, path, opened)| {
            let node = node.clone();
            let bar = bar.clone();
            async move {
                let (result, bytes) = match opened {
                    Err(reason) => (
                        FileResult {
                            path: path.display().to_string(),
                            sop_class_uid: None,
                            sop_instance_uid: None,
                            outcome: "failed",
                            status: None,
                            attempts: 0,
                            error: Some(reason),
                            note: None,
                        },
                        0,
                    ),
                    Ok(opened) => {
                        let out = node.store_opened(&path, opened, &OpOptions::default()).await;
                        let size = out.file.as_ref().map_or(0, |f| f.file_size);
                        let result = to_result(out);
                        let bytes = if result.outcome != "failed" { size } else { 0 };
                        (result, bytes)
                    }
                };
                report_line(&result, bar.as_ref());
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                (i, result, bytes)
            }
        })
        .buffer_unordered(opts.concurrency)
        .collect()
        .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let elapsed = started.elapsed();
    indexed.sort_by_key(|(i, _, _)| *i);
    let bytes: u64 = indexed.iter().map(|(_, _, b)| b).sum();
    let results: Vec<FileResult> = indexed.into_iter().map(|(_, r, _)| r).collect();
    let count = |o: &str| results.iter().filter(|r| r.outcome == o).count();
    let report = Report {
        target: opts.target.clone(),
        files_total: results.len(),
        stored: count("stored"),
        warnings: count("warning"),
        failed: count("failed"),
        bytes,
        elapsed_ms: elapsed.as_millis(),
        results,
    };
    let secs = elapsed.as_secs_f64();
    let mb = bytes as f64 / 1_000_000.0;
    println!(
        "{} files: {} stored, {} warnings, {} failed; {} bytes ({:.2} MB) in {:.3} s, {:.2} MB/s",
        report.files_total,
        report.stored,
        report.warnings,
        report.failed,
        bytes,
        mb,
        secs,
        if secs > 0.0 { mb / secs } else { 0.0 }
    );
    let mut code = if report.failed > 0 { exit::FAILED } else { exit::OK };
    if let Some(path) = &opts.report {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("error: cannot write report {}: {e}", path.display());
            code = exit::FAILED;
        }
    }
    code
}

fn to_result(out: StoreOutcome) -> FileResult {
    let status = out.outcome.last_status.map(|s| s.hex());
    let (outcome, error) = match &out.outcome.result {
        Ok(rsp) if rsp.status.is_warning() => ("warning", None),
        Ok(_) => ("stored", None),
        Err(e) => ("failed", Some(describe(e))),
    };
    FileResult {
        path: out.path.display().to_string(),
        sop_class_uid: out.file.as_ref().map(|f| f.sop_class_uid.clone()),
        sop_instance_uid: out.file.as_ref().map(|f| f.sop_instance_uid.clone()),
        outcome,
        status,
        attempts: out.outcome.attempts,
        error,
        note: out.file.as_ref().and_then(|f| f.meta_mismatch.clone()),
    }
}

fn describe(e: &OperationError) -> String {
    match e {
        ExecError::Operation(OpError::Status { status, comment }) => match comment {
            Some(c) => format!("C-STORE failed with status {status}: {c}"),
            None => format!("C-STORE failed with status {status}"),
        },
        other => other.to_string(),
    }
}

fn report_line(r: &FileResult, bar: Option<&indicatif::ProgressBar>) {
    let line = match r.outcome {
        "failed" => format!("error {}: {}", r.path, r.error.as_deref().unwrap_or("failed")),
        "warning" => {
            let status = r.status.clone().unwrap_or_default();
            let meaning = u16::from_str_radix(&status, 16)
                .map(|s| crate::dimse::Status(s).meaning())
                .unwrap_or("warning");
            format!("warning {status} {}: {meaning}", r.path)
        }
        _ => return,
    };
    match bar {
        Some(bar) => bar.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}
