//! Interoperability with DCMTK: our SCU against `storescp`, and DCMTK's SCUs
//! against our SCP. The peers are started on free loopback ports and stopped by PID.

mod common;

use common::*;

#[test]
fn store_all_fixtures_to_dcmtk_storescp() {
    if !peer_available("/usr/bin/storescp") || !peer_available("/usr/bin/dcmdump") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let port_s = port.to_string();
    // +xa: accept all supported transfer syntaxes (RLE and big endian included). A
    // stock storescp serves one association at a time: the pool must release an idle
    // association it cannot use before opening one for the RLE file.
    let _peer = start_peer(
        "/usr/bin/storescp",
        &[
            "--aetitle",
            "STORESCP",
            "+xa",
            "--output-directory",
            dir.path().to_str().unwrap(),
            &port_s,
        ],
        &[],
        port,
    );
    let target = format!("STORESCP@127.0.0.1:{port}");
    let report = dir.path().join("..").join(format!("report-{port}.json"));
    let (code, stdout, stderr) = pacs_net(&[
        "store",
        &target,
        fixtures().join("dicom").to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    let expected = dicom_fixture_files().len();
    assert!(
        stdout.contains(&format!("{expected} files: {expected} stored")),
        "{stdout}"
    );
    let received = files_under(dir.path());
    assert_eq!(received.len(), expected, "storescp wrote {received:?}");
    // Every received file parses (DCMTK reads it), and together they carry exactly
    // the SOP Instance UIDs sent.
    let mut uids = Vec::new();
    for f in &received {
        let out = std::process::Command::new("/usr/bin/dcmdump")
            .arg("+P")
            .arg("0008,0018")
            .arg(f)
            .output()
            .unwrap();
        assert!(out.status.success(), "dcmdump {}", f.display());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("1.2.826.0.1.3680043.10.1234.3."), "{text}");
        uids.push(dcmdump_value(&text).unwrap_or_else(|| panic!("no UID in {text}")));
    }
    uids.sort();
    assert_eq!(uids, dicom_fixture_uids());
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["stored"], expected);
    assert_eq!(report["failed"], 0);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), expected, "one result per file");
    for r in results {
        assert_eq!(r["status"], "0000");
        assert_eq!(r["attempts"], 1);
    }
}

/// The value of a one-line `dcmdump` element, e.g. `(0008,0018) UI [1.2.3] # ...`.
fn dcmdump_value(line: &str) -> Option<String> {
    let start = line.find('[')? + 1;
    let end = start + line[start..].find(']')?;
    Some(line[start..end].to_string())
}

#[test]
fn echo_dcmtk_storescp_over_one_pooled_association() {
    if !peer_available("/usr/bin/storescp") {
        return;
    }
    let port = free_port();
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("storescp.log");
    // -v: storescp logs "Association Acknowledged" for each association it accepts
    // ("Association Received" counts the readiness probe's bare connection too).
    let peer = start_peer_logged(
        "/usr/bin/storescp",
        &["-v", "--aetitle", "STORESCP", &port.to_string()],
        &[],
        port,
        &log,
    );
    let (code, stdout, stderr) = pacs_net(&[
        "echo",
        &format!("STORESCP@127.0.0.1:{port}"),
        "--count",
        "20",
        "--stats",
        "--stats-format",
        "json",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("20 of 20 succeeded"), "{stdout}");
    // Statistics go to stderr: stdout stays the one result.
    let json_start = stderr.find('[').unwrap();
    let stats: serde_json::Value = serde_json::from_str(&stderr[json_start..]).unwrap();
    assert_eq!(
        stats[0]["pool"]["created"], 1,
        "20 echoes reuse one association: {stats}"
    );
    // The peer's own account: one association, twenty echoes on it, released (the
    // release may reach its log just after our process ended: wait for it, bounded).
    for _ in 0..1000 {
        if std::fs::read_to_string(&log).is_ok_and(|t| t.contains("Association Release")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(peer);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("Association Acknowledged").count(), 1, "{text}");
    assert_eq!(text.matches("Received Echo Request").count(), 20, "{text}");
    assert_eq!(text.matches("Association Release").count(), 1, "{text}");
}

#[test]
fn dcmtk_scus_against_our_scp() {
    if !peer_available("/usr/bin/echoscu")
        || !peer_available("/usr/bin/storescu")
        || !peer_available("/usr/bin/findscu")
    {
        return;
    }
    let storage = tempfile::tempdir().unwrap();
    let (_scp, port) = start_our_scp(Some(storage.path()));
    let p = port.to_string();
    let echo = std::process::Command::new("/usr/bin/echoscu")
        .args(["-aec", "OURSCP", "127.0.0.1", &p])
        .output()
        .unwrap();
    assert!(
        echo.status.success(),
        "echoscu: {}",
        String::from_utf8_lossy(&echo.stderr)
    );
    let ct = fixtures().join("dicom/patient1/study1/series1/1.dcm");
    let store = std::process::Command::new("/usr/bin/storescu")
        .args(["-aec", "OURSCP", "127.0.0.1", &p])
        .arg(&ct)
        .output()
        .unwrap();
    assert!(
        store.status.success(),
        "storescu: {}",
        String::from_utf8_lossy(&store.stderr)
    );
    assert_eq!(files_under(storage.path()).len(), 1);
    let find = std::process::Command::new("/usr/bin/findscu")
        .args([
            "-S",
            "-aec",
            "OURSCP",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "PatientID=PNT-0001",
            "-k",
            "StudyInstanceUID",
            "127.0.0.1",
            &p,
        ])
        .output()
        .unwrap();
    assert!(
        find.status.success(),
        "findscu: {}",
        String::from_utf8_lossy(&find.stderr)
    );
    let text = String::from_utf8_lossy(&find.stderr).to_string() + &String::from_utf8_lossy(&find.stdout);
    assert!(text.contains("1.2.826.0.1.3680043.10.1234.1.1"), "{text}");
}
