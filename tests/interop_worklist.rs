//! Modality Worklist C-FIND (`pacs-net worklist`) against DCMTK's wlmscpfs,
//! Orthanc's ModalityWorklists plugin and our own `scp --worklist`, over the
//! worklist items of fixtures/worklist (written here by dump2dcm from their dump
//! files): date-range and modality matching with sequence keys, names in UTF-8,
//! ISO 2022 IR 87 (Japanese) and Latin-1 printed as UTF-8, DICOM JSON with SQ.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{free_port, peer_available, start_orthanc, start_peer, Peer};

const UTF8_NAME: &str = "Wang^XiaoDong=王^小東";
const IR87_NAME: &str = "Yamada^Tarou=山田^太郎=やまだ^たろう";
const LATIN1_NAME: &str = "Müller^Jürgen";

/// Writes the worklist files into `dir/WLM` with dump2dcm (and the lockfile
/// wlmscpfs wants); the folder.
fn write_worklist(dir: &Path) -> PathBuf {
    let wl = dir.join("WLM");
    std::fs::create_dir_all(&wl).unwrap();
    std::fs::write(wl.join("lockfile"), b"").unwrap();
    let fixtures = common::fixtures().join("worklist");
    for n in 1..=3 {
        let dump = fixtures.join(format!("wklist{n}.dump"));
        let out = wl.join(format!("wklist{n}.wl"));
        let st = Command::new("/usr/bin/dump2dcm")
            .args(["-g", "+te"])
            .arg(&dump)
            .arg(&out)
            .status()
            .expect("run dump2dcm");
        assert!(st.success(), "dump2dcm {}", dump.display());
    }
    wl
}

/// Runs pacs-net; (exit code, stdout bytes, stderr).
fn run(args: &[&str]) -> (i32, Vec<u8>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pacs-net"))
        .args(args)
        .env_remove("PACS_NET_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run pacs-net");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    String::from_utf8(stdout).expect("stdout is UTF-8")
}

fn contains_bytes(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The checks every worklist SCP must pass. `target` is AET@127.0.0.1:PORT.
fn check_worklist_scp(target: &str, check_latin1: bool) {
    // Default keys, table: every item, the names as UTF-8 bytes on stdout.
    let (code, stdout, stderr) = run(&["worklist", target]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        contains_bytes(&stdout, UTF8_NAME),
        "{}",
        String::from_utf8_lossy(&stdout)
    );
    assert!(
        contains_bytes(&stdout, IR87_NAME),
        "{}",
        String::from_utf8_lossy(&stdout)
    );
    if check_latin1 {
        assert!(
            contains_bytes(&stdout, LATIN1_NAME),
            "{}",
            String::from_utf8_lossy(&stdout)
        );
    }
    let table = String::from_utf8(stdout).unwrap();
    assert!(table.contains("ScheduledProcedureStepSequence.Modality"), "{table}");
    assert!(table.contains("(3 matches)"), "{table}");
    assert!(!stderr.contains("Unsupported character set"), "{stderr}");

    // Modality and date range, in the Scheduled Procedure Step item.
    let csv = ok(&[
        "worklist",
        target,
        "-k",
        "PatientID",
        "-k",
        "ScheduledProcedureStepSequence.Modality=CT",
        "-k",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=20261201-20261210",
        "--format",
        "csv",
    ]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "PatientID,ScheduledProcedureStepSequence.Modality,ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate"
    );
    assert_eq!(&lines[1..], ["PID1,CT,20261201"], "{csv}");
    let csv = ok(&[
        "worklist",
        target,
        "-k",
        "PatientID",
        "-k",
        "ScheduledProcedureStepSequence.Modality=CT",
        "--format",
        "csv",
    ]);
    let mut rows: Vec<&str> = csv.lines().skip(1).collect();
    rows.sort();
    assert_eq!(rows, ["PID1,CT", "PID3,CT"], "{csv}");
    let csv = ok(&[
        "worklist",
        target,
        "-k",
        "PatientName",
        "-k",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=20261202",
        "-k",
        "ScheduledProcedureStepSequence.ScheduledStationAETitle",
        "--format",
        "csv",
    ]);
    assert_eq!(
        csv.lines().skip(1).collect::<Vec<_>>(),
        [format!("{IR87_NAME},20261202,STATION2")],
        "{csv}"
    );

    // DICOM JSON: the PN groups, the sequence as SQ with item objects.
    let json = ok(&[
        "worklist",
        target,
        "-k",
        "PatientName",
        "-k",
        "ScheduledProcedureStepSequence.Modality=MR",
        "-k",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepID",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).expect(&json);
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 1, "{json}");
    let pn = &arr[0]["00100010"]["Value"][0];
    assert_eq!(pn["Alphabetic"], "Yamada^Tarou", "{json}");
    assert_eq!(pn["Ideographic"], "山田^太郎", "{json}");
    assert_eq!(pn["Phonetic"], "やまだ^たろう", "{json}");
    let sps = &arr[0]["00400100"];
    assert_eq!(sps["vr"], "SQ", "{json}");
    assert_eq!(sps["Value"][0]["00080060"]["Value"][0], "MR", "{json}");
    assert_eq!(sps["Value"][0]["00400009"]["Value"][0], "SPS2", "{json}");

    // --limit stops after one (C-CANCEL).
    let one = ok(&["worklist", target, "-k", "PatientID", "--limit", "1"]);
    assert!(one.contains("(1 match)"), "{one}");

    // A value that does not fit its VR is a usage error, nothing sent.
    let (code, _, stderr) = run(&[
        "worklist",
        target,
        "-k",
        "ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=soon",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("ScheduledProcedureStepStartDate"), "{stderr}");
}

fn dcmtk_ready() -> bool {
    peer_available("/usr/bin/wlmscpfs") && peer_available("/usr/bin/dump2dcm")
}

#[test]
fn worklist_against_dcmtk_wlmscpfs() {
    if !dcmtk_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_worklist(dir.path());
    let port = free_port();
    let data = dir.path().to_str().unwrap();
    // -csk: return the character set of the file (by default wlmscpfs drops it,
    // and non-ASCII names could not be read by anyone).
    let _peer: Peer = start_peer(
        "/usr/bin/wlmscpfs",
        &["-csk", "-dfp", data, &port.to_string()],
        &[],
        port,
    );
    check_worklist_scp(&format!("WLM@127.0.0.1:{port}"), true);
}

/// wlmscpfs as started by default (`-cs0`): it returns no Specific Character Set,
/// only its files' bytes; the ISO 2022 escapes and UTF-8 are still recognised.
#[test]
fn worklist_against_dcmtk_wlmscpfs_without_character_set() {
    if !dcmtk_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_worklist(dir.path());
    let port = free_port();
    let data = dir.path().to_str().unwrap();
    let _peer: Peer = start_peer("/usr/bin/wlmscpfs", &["-dfp", data, &port.to_string()], &[], port);
    check_worklist_scp(&format!("WLM@127.0.0.1:{port}"), true);
}

#[test]
fn worklist_against_orthanc_modality_worklists_plugin() {
    let plugin = "/usr/share/orthanc/plugins/libModalityWorklists.so";
    if !peer_available("/usr/sbin/Orthanc") || !peer_available(plugin) || !peer_available("/usr/bin/dump2dcm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wl = write_worklist(dir.path());
    let (_peer, port, _) = start_orthanc(
        dir.path(),
        serde_json::json!({
            "Plugins": [plugin],
            "Worklists": {"Enable": true, "Database": wl},
            "DicomAlwaysAllowFindWorklist": true,
            // Orthanc answers in its default encoding (Latin-1 unless told),
            // which cannot hold the Japanese and Chinese names.
            "DefaultEncoding": "Utf8",
        }),
    );
    check_worklist_scp(&format!("ORTHANC@127.0.0.1:{port}"), true);
}

#[test]
fn worklist_against_our_scp() {
    if !peer_available("/usr/bin/dump2dcm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let wl = write_worklist(dir.path());
    let port = free_port();
    let _peer = start_peer(
        env!("CARGO_BIN_EXE_pacs-net"),
        &["scp", "--port", &port.to_string(), "--worklist", wl.to_str().unwrap()],
        &[],
        port,
    );
    let target = format!("OURSCP@127.0.0.1:{port}");
    check_worklist_scp(&target, true);
    // A non-ASCII query value goes out as ISO_IR 192 and matches.
    let csv = ok(&[
        "worklist",
        &target,
        "-k",
        "PatientName=*山田*",
        "-k",
        "PatientID",
        "--format",
        "csv",
    ]);
    assert_eq!(
        csv.lines().skip(1).collect::<Vec<_>>(),
        [format!("{IR87_NAME},PID2")],
        "{csv}"
    );
}

#[test]
fn our_scp_serves_the_bundled_worklist() {
    let port = free_port();
    let wl = common::fixtures().join("worklist");
    let _peer = start_peer(
        env!("CARGO_BIN_EXE_pacs-net"),
        &["scp", "--port", &port.to_string(), "--worklist", wl.to_str().unwrap()],
        &[],
        port,
    );
    check_worklist_scp(&format!("OURSCP@127.0.0.1:{port}"), true);
}

#[test]
fn a_worklist_folder_that_does_not_exist_is_a_usage_error() {
    let (code, _, stderr) = run(&["scp", "--port", "0", "--worklist", "/nonexistent/worklist"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--worklist"), "{stderr}");
}

#[test]
fn worklist_without_a_worklist_folder_fails() {
    let (_peer, port) = common::start_our_scp(None);
    let (code, stdout, stderr) = run(&["worklist", &format!("OURSCP@127.0.0.1:{port}")]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.is_empty(), "no result for a failed query");
}

/// The library: `Node::worklist` through the pool against the embedded SCP, the
/// items decoded (sequence, character sets), and a stop after one (C-CANCEL)
/// that leaves the association reusable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_worklist_through_the_pool() {
    use dicom_dictionary_std::tags;
    use pacs_net::dimse::WorklistQuery;
    use std::ops::ControlFlow;

    let scp = pacs_net::scp::Scp::start(
        pacs_net::scp::ScpConfig {
            worklist: Some(pacs_net::scp::WorklistFolder::open(&common::fixtures().join("worklist")).unwrap()),
            ..pacs_net::scp::ScpConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let client = pacs_net::client::Client::new(pacs_net::config::Config::default(), None);
    let node = client
        .node(&format!("{}@127.0.0.1:{}", scp.ae_title(), scp.port()))
        .unwrap();

    let mut items = Vec::new();
    let out = node
        .worklist(&WorklistQuery::default(), |m| {
            items.push(m);
            ControlFlow::Continue(())
        })
        .await;
    let outcome = out.result.expect("worklist C-FIND");
    assert_eq!(outcome.matches, 3);
    assert!(!outcome.cancelled);
    let mut names: Vec<String> = items
        .iter()
        .map(|m| m.element(tags::PATIENT_NAME).unwrap().to_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, [LATIN1_NAME, UTF8_NAME, IR87_NAME]);
    for m in &items {
        let sps = m
            .element(tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            .unwrap()
            .items()
            .unwrap();
        assert_eq!(sps.len(), 1);
        assert!(sps[0].element(tags::MODALITY).is_ok());
    }

    let query = WorklistQuery::new(vec!["ScheduledProcedureStepSequence.Modality=CT".parse().unwrap()]);
    let out = node.worklist(&query, |_| ControlFlow::Break(())).await;
    let outcome = out.result.expect("cancelled worklist C-FIND");
    assert!(outcome.cancelled);
    assert_eq!(outcome.matches, 1);
    // The same pooled association answers the next query.
    let mut n = 0;
    node.worklist(&query, |_| {
        n += 1;
        ControlFlow::Continue(())
    })
    .await
    .result
    .unwrap();
    assert_eq!(n, 2);
    let stats = node.stats();
    assert_eq!(stats.pool.created, 1, "one association for the three queries");
    client.close(std::time::Duration::from_secs(5)).await;
    scp.shutdown().await;
}
