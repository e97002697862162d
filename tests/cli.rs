//! The `pacs-net` binary: exit codes, streams, the report, and bad input.

mod common;

use common::*;

#[test]
fn unknown_node_is_a_usage_error_listing_known_nodes() {
    let cfg = fixtures().join("../config/hospital.example.json");
    let (code, _out, err) = pacs_net(&["-c", cfg.to_str().unwrap(), "echo", "NOPE"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("unknown node `NOPE`") && err.contains("MAIN_PACS") && err.contains("CT_SCANNER"),
        "{err}"
    );
}

#[test]
fn invalid_config_names_the_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(
        &path,
        r#"{"nodes": {"MAIN_PACS": {"ae_title": "X", "host": "127.0.0.1", "prot": 4242}}}"#,
    )
    .unwrap();
    let (code, _out, err) = pacs_net(&["config", "check", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("nodes.MAIN_PACS.prot"), "{err}");
    std::fs::write(&path, "{\n  \"nodes\": {,\n}").unwrap();
    let (code, _out, err) = pacs_net(&["-c", path.to_str().unwrap(), "echo", "X"]);
    assert_eq!(code, 2);
    assert!(err.contains("line 2 column"), "{err}");
}

#[test]
fn config_check_prints_the_example() {
    let cfg = fixtures().join("../config/hospital.example.json");
    let (code, out, err) = pacs_net(&["config", "check", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for node in ["MAIN_PACS", "CT_SCANNER", "MR_SCANNER", "WORKSTATION", "CLOUD_ARCHIVE"] {
        assert!(out.contains(node), "{out}");
    }
}

#[test]
fn bad_flags_and_ae_titles_exit_2() {
    assert_eq!(pacs_net(&["echo"]).0, 2);
    assert_eq!(pacs_net(&["echo", "X@127.0.0.1:1", "--count", "0"]).0, 2);
    let (code, _o, err) = pacs_net(&["echo", "WAY_TOO_LONG_AE_TITLE_X@127.0.0.1:104"]);
    assert_eq!(code, 2, "{err}");
    let (code, _o, err) = pacs_net(&["--calling-ae", "BAD\\AE", "echo", "X@127.0.0.1:104"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn connection_refused_exits_1_with_a_reason() {
    let port = free_port();
    let (code, out, err) = pacs_net(&["echo", &format!("NOBODY@127.0.0.1:{port}")]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("cannot connect") || err.contains("refused"), "{err}");
}

#[test]
fn store_reports_every_file_and_bad_ones_do_not_stop_the_others() {
    let (_scp, port) = start_our_scp(None);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let broken = fixtures().join("broken");
    let good = fixtures().join("dicom/patient1/study1/series1");
    let missing = dir.path().join("missing.dcm");
    let (code, out, err) = pacs_net(&[
        "store",
        &format!("OURSCP@127.0.0.1:{port}"),
        good.to_str().unwrap(),
        broken.to_str().unwrap(),
        missing.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--no-progress",
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("8 files: 3 stored, 0 warnings, 5 failed"), "{out}");
    assert!(err.contains("notes.txt: not a DICOM file"), "{err}");
    assert!(err.contains("truncated.dcm: truncated"), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["files_total"], 8);
    assert_eq!(r["stored"], 3);
    assert_eq!(r["failed"], 5);
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 8, "one result per file");
    assert_eq!(results.iter().filter(|res| res["outcome"] == "failed").count(), 5);
    for res in results {
        if res["outcome"] == "failed" {
            assert_eq!(res["attempts"], 0);
            assert!(res["status"].is_null());
            assert!(res["error"].is_string());
        } else {
            assert_eq!(res["status"], "0000");
            assert_eq!(res["attempts"], 1);
        }
    }
    assert!(r["bytes"].as_u64().unwrap() > 0);
}

#[test]
fn no_patient_data_in_logs_at_debug_level() {
    let (_scp, port) = start_our_scp(None);
    let target = format!("OURSCP@127.0.0.1:{port}");
    let (code, _out, err) = pacs_net(&["-vv", "store", &target, fixtures().join("dicom").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err2) = pacs_net(&[
        "-vv",
        "find",
        &target,
        "-k",
        "PatientName=DOE*",
        "-k",
        "PatientID",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err2}");
    assert!(out.contains("DOE^JANE"), "the results themselves go to stdout: {out}");
    for logs in [&err, &err2] {
        assert!(logs.contains("DEBUG"), "debug logs were produced");
        for phi in [
            "DOE",
            "JANE",
            "ROE^RICHARD",
            "PNT-0001",
            "PNT-0002",
            "PNT-0003",
            "TEST^PATIENT",
            "19800214",
            "19651103",
            "19991231",
        ] {
            assert!(!logs.contains(phi), "{phi} in logs:\n{logs}");
        }
    }
}

#[test]
fn stats_and_metrics_at_the_end_of_a_run() {
    let (_scp, port) = start_our_scp(None);
    let dir = tempfile::tempdir().unwrap();
    let metrics = dir.path().join("metrics.prom");
    let target = format!("OURSCP@127.0.0.1:{port}");
    let (code, out, err) = pacs_net(&[
        "echo",
        &target,
        "--count",
        "5",
        "--stats",
        "--metrics",
        metrics.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    // Statistics go to stderr: stdout stays the one result.
    assert!(!out.contains("health"), "{out}");
    assert!(err.contains("health") && err.contains("healthy"), "{err}");
    assert!(
        err.contains("pool: created / create failures") && err.contains("breaker: state"),
        "{err}"
    );
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(text.contains("pacs_net_operations_total{"), "{text}");
    assert!(
        text.contains("operation=\"C-ECHO\",outcome=\"success\",status_class=\"success\"} 5"),
        "{text}"
    );
    let (code, out, err) = pacs_net(&["echo", &target, "--stats", "--stats-format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("C-ECHO "), "{out}");
    let json: serde_json::Value = serde_json::from_str(&err[err.find('[').unwrap()..]).unwrap();
    assert_eq!(json[0]["node"], target);
    assert_eq!(json[0]["health"]["status"], "healthy");
    assert!(json[0]["pool"]["wait"]["p99_ms"].is_number());
}

#[test]
fn json_logs_are_one_object_per_line() {
    let (_scp, port) = start_our_scp(None);
    let (code, _out, err) = pacs_net(&[
        "-vv",
        "--log-format",
        "json",
        "echo",
        &format!("OURSCP@127.0.0.1:{port}"),
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    let mut debug = 0;
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{l}");
        debug += usize::from(v["level"] == "DEBUG");
    }
    assert!(debug > 0, "-vv logs at debug level: {err}");
}

#[test]
fn global_options_after_the_command_and_config_from_the_environment() {
    // The SCP runs in this process, so the test can ask it which calling AE title
    // it saw.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let scp = runtime
        .block_on(pacs_net::scp::Scp::start(
            pacs_net::scp::ScpConfig {
                ae_title: "OURSCP".into(),
                ..pacs_net::scp::ScpConfig::default()
            },
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    let port = scp.port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("h.json");
    std::fs::write(
        &cfg,
        format!(r#"{{"local_ae_title": "FROMCFG", "nodes": {{"LOCAL": {{"ae_title": "OURSCP", "host": "127.0.0.1", "port": {port}}}}}}}"#),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pacs-net"))
        .args(["echo", "LOCAL", "-vv", "--calling-ae", "AFTERCMD"])
        .env("PACS_NET_CONFIG", &cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 of 1 succeeded"));
    // `-vv` after the command took effect too.
    assert!(err.contains("DEBUG"), "{err}");
    // `--calling-ae` after the command won over the config's local_ae_title.
    assert_eq!(scp.recent_calling_aes(), ["AFTERCMD"]);
    assert_eq!(scp.stats().echoes, 1);
}
