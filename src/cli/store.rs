//! `pacs-net store`: C-STORE every file under the given paths through the node's
//! pool, C at a time; a failing file never stops the others, every outcome is
//! reported (stderr, summary line, `--report` JSON). A DICOMDIR is skipped; Ctrl-C
//! stops starting new files, lets the ones in flight finish, and still prints the
//! summary and writes the report.

use parking_lot::Mutex;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;

use crate::client::{open_instance, Client, OpError, OpOptions, OperationError, StoreOutcome};
use crate::resilience::ExecError;

use super::failure::{self, plural};
use super::{error_line, exit, Interrupt};

pub(super) struct StoreOpts {
    pub target: String,
    pub paths: Vec<PathBuf>,
    pub concurrency: usize,
    pub report: Option<PathBuf>,
    pub progress: bool,
    /// `--commit`: storage commitment of what was stored.
    pub commit: Option<super::commit::CommitArgs>,
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
    /// Ctrl-C stopped the run: `not_started` files were never tried.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    interrupted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_started: Option<usize>,
    /// DICOMDIR files found and skipped (not counted).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    skipped: Vec<String>,
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
    /// Refused by the open circuit without an attempt: not a line of its own on
    /// stderr (the summary names the cause once).
    #[serde(skip)]
    quiet: bool,
    /// `--commit`: `committed`, `failed` or `unknown` (files stored only).
    #[serde(skip_serializing_if = "Option::is_none")]
    commitment: Option<&'static str>,
    /// `--commit`: the Failure Reason (PS3.4 J.3.3.1) where failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    commitment_failure_reason: Option<String>,
}

/// Whether the report can be written there: checked before anything is sent, by
/// creating the file (removed again if it did not exist).
pub(super) fn check_report_path(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err("is a folder".to_string());
    }
    let existed = path.exists();
    match std::fs::OpenOptions::new().append(true).create(true).open(path) {
        Ok(_) => {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        }
        Err(e) => Err(format!("cannot be written: {e}")),
    }
}

/// Input paths expanded: files as given, directories walked (sorted), and paths
/// that cannot be read kept as failures.
pub(super) fn collect(paths: &[PathBuf]) -> Vec<(PathBuf, Option<String>)> {
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

/// What became of one file.
enum Done {
    Result(FileResult, u64),
    /// A DICOMDIR: skipped, not counted.
    Skipped(String),
}

/// Failures the open circuit refused without trying: reported once, with the
/// root cause (the last error of an attempt that was made).
#[derive(Default)]
struct Causes {
    last_cause: Option<String>,
    circuit: Option<String>,
    refused: usize,
}

pub(super) async fn store(client: Arc<Client>, opts: StoreOpts, interrupt: Interrupt) -> u8 {
    let node = match client.node(&opts.target) {
        Ok(n) => n,
        Err(e) => return super::target_error(e),
    };
    let files = collect(&opts.paths);
    if files.is_empty() {
        error_line!(
            "no input files in {}",
            opts.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return exit::FAILED;
    }
    let found = files.len();
    // `--commit`: the listener is up (or its port found taken) before anything is sent.
    let committer = match &opts.commit {
        Some(args) => match super::commit::Committer::start(&client, args).await {
            Ok(c) => Some(c),
            Err(code) => return code,
        },
        None => None,
    };
    let bar = if opts.progress && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(found as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} files {rate} {msg}",
        ) {
            bar.set_style(style.with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} files/s", state.per_sec());
                },
            ));
        }
        Some(bar)
    } else {
        None
    };
    let causes = Arc::new(Mutex::new(Causes::default()));
    let started = Instant::now();
    let stop = interrupt.clone();
    // Files are opened and checked (on the blocking pool) a few ahead of the ones
    // being sent, so that reading the next file overlaps the current exchange.
    let mut indexed: Vec<(usize, Done)> = futures::stream::iter(files.into_iter().enumerate())
        .map(|(i, (path, read_error))| async move {
            let opened = match read_error {
                Some(reason) => Err(reason),
                None => Ok(open_instance(&path).await),
            };
            (i, path, opened)
        })
        .buffered(opts.concurrency + 2)
        // After Ctrl-C no file is started; the ones in flight finish.
        .take_while(move |_| futures::future::ready(!stop.is_set()))
        .map(|(i, path, opened)| {
            let node = node.clone();
            let bar = bar.clone();
            let causes = causes.clone();
            async move {
                let done = match opened {
                    Ok(Err(crate::dimse::FileError::MediaDirectory)) => Done::Skipped(path.display().to_string()),
                    Err(reason) => Done::Result(
                        FileResult {
                            path: path.display().to_string(),
                            sop_class_uid: None,
                            sop_instance_uid: None,
                            outcome: "failed",
                            status: None,
                            attempts: 0,
                            error: Some(reason),
                            note: None,
                            quiet: false,
                            commitment: None,
                            commitment_failure_reason: None,
                        },
                        0,
                    ),
                    Ok(opened) => {
                        let t = Instant::now();
                        let out = node.store_opened(&path, opened, &OpOptions::default()).await;
                        let size = out.file.as_ref().map_or(0, |f| f.file_size);
                        let result = to_result(out, t.elapsed(), &causes);
                        let bytes = if result.outcome != "failed" { size } else { 0 };
                        Done::Result(result, bytes)
                    }
                };
                if let Done::Result(result, _) = &done {
                    report_line(result, bar.as_ref());
                }
                if let Some(bar) = &bar {
                    bar.inc(1);
                }
                (i, done)
            }
        })
        .buffer_unordered(opts.concurrency)
        .collect()
        .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let interrupted = interrupt.is_set();
    let elapsed = started.elapsed();
    indexed.sort_by_key(|(i, _)| *i);
    let processed = indexed.len();
    let mut skipped = Vec::new();
    let mut results = Vec::new();
    let mut bytes = 0u64;
    for (_, done) in indexed {
        match done {
            Done::Result(r, b) => {
                bytes += b;
                results.push(r);
            }
            Done::Skipped(p) => skipped.push(p),
        }
    }
    let commitment = match committer {
        Some(c) if !interrupted => {
            let stored = results
                .iter()
                .map(|r| match (r.outcome, &r.sop_class_uid, &r.sop_instance_uid) {
                    ("stored" | "warning", Some(class), Some(instance)) => Some((
                        crate::dimse::SopRef {
                            sop_class_uid: class.clone(),
                            sop_instance_uid: instance.clone(),
                        },
                        r.path.clone(),
                    )),
                    _ => None,
                })
                .collect();
            let (line, all, said) = super::commit::commit_stored(c, &node, stored).await;
            for (r, c) in results.iter_mut().zip(said) {
                if let Some(c) = c {
                    r.commitment = Some(c.as_str());
                    r.commitment_failure_reason = c.failure_reason();
                }
            }
            Some((line, all))
        }
        Some(c) => {
            c.shutdown().await;
            None
        }
        None => None,
    };
    let count = |o: &str| results.iter().filter(|r| r.outcome == o).count();
    let report = Report {
        target: opts.target.clone(),
        files_total: results.len(),
        stored: count("stored"),
        warnings: count("warning"),
        failed: count("failed"),
        bytes,
        elapsed_ms: elapsed.as_millis(),
        interrupted,
        not_started: interrupted.then(|| found - processed),
        skipped,
        results,
    };
    {
        let c = causes.lock();
        if let Some(circuit) = &c.circuit {
            error_line!(
                "{} not sent: {circuit}{}",
                plural(c.refused, "file", "files"),
                c.last_cause.as_ref().map(|x| format!(": {x}")).unwrap_or_default()
            );
        }
    }
    for p in &report.skipped {
        eprintln!("skipped {p}: a DICOMDIR (Media Storage Directory), not an instance");
    }
    if report.files_total == 0 && !interrupted {
        error_line!("no input files: only DICOMDIR found");
        return exit::FAILED;
    }
    let secs = elapsed.as_secs_f64();
    let mb = bytes as f64 / 1_000_000.0;
    println!(
        "{}: {} stored, {} warnings, {} failed; {} bytes ({:.2} MB) in {:.3} s, {:.2} MB/s{}",
        plural(report.files_total, "file", "files"),
        report.stored,
        report.warnings,
        report.failed,
        bytes,
        mb,
        secs,
        if secs > 0.0 { mb / secs } else { 0.0 },
        report
            .not_started
            .map(|n| format!("; interrupted, {} not started", plural(n, "file", "files")))
            .unwrap_or_default()
    );
    if let Some((line, _)) = &commitment {
        println!("{line}");
    }
    let mut code = if interrupted {
        exit::INTERRUPTED
    } else if report.failed > 0 || commitment.as_ref().is_some_and(|(_, all)| !all) {
        exit::FAILED
    } else {
        exit::OK
    };
    if let Some(path) = &opts.report {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            error_line!("cannot write report {}: {e}", path.display());
            if code == exit::OK {
                code = exit::FAILED;
            }
        }
    }
    code
}

fn to_result(out: StoreOutcome, elapsed: std::time::Duration, causes: &Mutex<Causes>) -> FileResult {
    let status = out.outcome.last_status.map(|s| s.hex());
    let mut quiet = false;
    let (outcome, error) = match &out.outcome.result {
        Ok(rsp) if rsp.status.is_warning() => ("warning", None),
        Ok(_) => ("stored", None),
        Err(e) => {
            let mut c = causes.lock();
            if let Some(cause) = failure::root_cause(e) {
                c.last_cause = Some(cause);
            }
            if failure::is_bare_circuit_open(e) {
                // Said once at the end; the report still names the cause per file.
                c.refused += 1;
                let words = failure::circuit_words(e).unwrap_or_default();
                c.circuit = Some(words.clone());
                let reason = match &c.last_cause {
                    Some(cause) => format!("not sent: {words}: {cause}"),
                    None => format!("not sent: {words}"),
                };
                quiet = true;
                ("failed", Some(reason))
            } else {
                ("failed", Some(describe(e, out.outcome.attempts, elapsed)))
            }
        }
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
        quiet,
        commitment: None,
        commitment_failure_reason: None,
    }
}

fn describe(e: &OperationError, attempts: u32, elapsed: std::time::Duration) -> String {
    match e {
        ExecError::Operation(OpError::Status { status, comment }) => match comment {
            Some(c) => format!("C-STORE failed with status {status}: {c}"),
            None => format!("C-STORE failed with status {status}"),
        },
        other => failure::describe(other, attempts, elapsed),
    }
}

fn report_line(r: &FileResult, bar: Option<&indicatif::ProgressBar>) {
    let line = match r.outcome {
        "failed" if r.quiet => return,
        "failed" => format!(
            "{}{}: {}",
            super::style::error_label(),
            r.path,
            r.error.as_deref().unwrap_or("failed")
        ),
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
