//! Issue 15, "the CLI for people": what a user sees and can rely on, point by point.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

fn dead_target() -> String {
    format!("DEAD@127.0.0.1:{}", free_port())
}

fn json_after(text: &str, open: char) -> serde_json::Value {
    let start = text.find(open).unwrap_or_else(|| panic!("no JSON in {text}"));
    serde_json::from_str(&text[start..]).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A DICOMDIR (Media Storage Directory Storage) written with dicom-object.
fn write_dicomdir(path: &Path) {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::meta::FileMetaTableBuilder;
    use dicom_object::InMemDicomObject;
    let mut o = InMemDicomObject::new_empty();
    o.put(DataElement::new(
        tags::FILE_SET_ID,
        VR::CS,
        PrimitiveValue::from("CDROM"),
    ));
    o.put(DataElement::new(
        tags::FILE_SET_CONSISTENCY_FLAG,
        VR::US,
        PrimitiveValue::from(0u16),
    ));
    let file = o
        .with_meta(
            FileMetaTableBuilder::new()
                .media_storage_sop_class_uid("1.2.840.10008.1.3.10")
                .media_storage_sop_instance_uid("1.2.3.4.5.6.7")
                .transfer_syntax("1.2.840.10008.1.2.1"),
        )
        .unwrap();
    file.write_to_file(path).unwrap();
}

// 1. Slow, understated failures.

#[test]
fn a_refused_connection_gets_one_quick_retry_at_most() {
    let (code, out, err) = pacs_net(&["echo", &dead_target(), "--stats", "--stats-format", "json"]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "no result on stdout: {out}");
    assert!(err.contains("connection refused"), "{err}");
    let stats = json_after(&err, '[');
    assert_eq!(stats[0]["resilience"]["calls"], 2, "one try and one quick retry: {err}");
    assert_eq!(stats[0]["resilience"]["retries"], 1, "{err}");
}

#[test]
fn an_unknown_host_is_said_plainly_and_not_retried_with_back_off() {
    let (code, _out, err) = pacs_net(&[
        "echo",
        "X@no-such-host.invalid:104",
        "--stats",
        "--stats-format",
        "json",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unknown host no-such-host.invalid"), "{err}");
    let stats = json_after(&err, '[');
    assert!(stats[0]["resilience"]["retries"].as_u64().unwrap() <= 1, "{err}");
}

#[test]
fn a_timeout_says_which_timeout_expired_and_the_total_time() {
    // A peer that takes the TCP connection (backlog) but never answers A-ASSOCIATE.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let (code, out, err) = pacs_net(&[
        "echo",
        &format!("SILENT@127.0.0.1:{port}"),
        "--acse-timeout-ms",
        "150",
        "--connect-timeout-ms",
        "150",
        "--attempts",
        "2",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("ACSE timeout (150 ms, --acse-timeout-ms) expired"),
        "{err}"
    );
    assert!(err.contains("gave up after 2 attempts in"), "{err}");
    // One attempt: the time spent all the same.
    let (code, _out, err) = pacs_net(&[
        "echo",
        &format!("SILENT@127.0.0.1:{port}"),
        "--acse-timeout-ms",
        "100",
        "--connect-timeout-ms",
        "100",
        "--attempts",
        "1",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("ACSE timeout (100 ms, --acse-timeout-ms) expired"),
        "{err}"
    );
    assert!(err.contains("; gave up after ") && err.contains(" ms"), "{err}");
    drop(silent);
}

// 2. Root causes hidden behind the breaker.

#[test]
fn echoes_refused_by_the_open_circuit_name_the_root_cause_once() {
    let (code, _out, err) = pacs_net(&["echo", &dead_target(), "--count", "5"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("2 C-ECHOs to")
            && err.contains("not sent: circuit open after 5 consecutive failures: connection refused"),
        "{err}"
    );
    assert!(!err.contains("next probe in 60.0s"), "{err}");
}

#[test]
fn a_store_to_a_dead_node_says_the_cause_once_and_reports_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let (code, out, err) = pacs_net(&[
        "store",
        &dead_target(),
        fixtures().join("dicom").to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--no-progress",
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(out.contains("13 files: 0 stored, 0 warnings, 13 failed"), "{out}");
    let summary: Vec<&str> = err.lines().filter(|l| l.contains("files not sent")).collect();
    assert_eq!(summary.len(), 1, "{err}");
    assert!(
        summary[0].contains("circuit open after 5 consecutive failures: connection refused"),
        "{err}"
    );
    // Two tries for each of the first files, then the circuit: a handful of lines, not 13.
    assert!(err.lines().count() < 8, "{err}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 13);
    assert!(results
        .iter()
        .all(|x| x["outcome"] == "failed" && x["error"].is_string()));
}

// 3. Developer logs only with -v.

#[test]
fn default_output_is_for_people() {
    let (_code, _out, err) = pacs_net(&["store", &dead_target(), fixtures().join("dicom").to_str().unwrap()]);
    for l in err.lines() {
        assert!(
            l.starts_with("error: ") || l.starts_with("warning: "),
            "a line for people: {l}\n{err}"
        );
        assert!(
            !l.contains("pacs_net::") && !l.contains("attempt=") && !l.contains("node="),
            "{l}"
        );
    }
    assert!(!err.contains('\x1b'), "no colour when stderr is not a terminal: {err}");
}

// 4. -v / -vv.

#[test]
fn vv_shows_each_dimse_message_and_default_shows_none() {
    let (_scp, port) = start_our_scp(None);
    let target = format!("OURSCP@127.0.0.1:{port}");
    let (code, _out, err) = pacs_net(&["-vv", "echo", &target]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("sent C-ECHO-RQ message ID 1"), "{err}");
    assert!(err.contains("received C-ECHO-RSP message ID 1 status 0000"), "{err}");
    let (_code, _out, err) = pacs_net(&["-v", "echo", &target]);
    assert!(!err.contains("C-ECHO-RQ"), "{err}");
    let (_code, _out, err) = pacs_net(&["echo", &target]);
    assert!(err.is_empty(), "{err}");
}

// 6. Streams.

#[test]
fn find_json_with_json_stats_keeps_stdout_one_json_document() {
    let (_scp, port) = start_our_scp(None);
    let target = format!("OURSCP@127.0.0.1:{port}");
    let (code, _o, err) = pacs_net(&["store", &target, fixtures().join("dicom").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = pacs_net(&[
        "find",
        &target,
        "-k",
        "PatientID",
        "--format",
        "json",
        "--stats",
        "--stats-format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let matches: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(!matches.as_array().unwrap().is_empty());
    let stats = json_after(&err, '[');
    assert_eq!(
        stats[0]["pool"]["acquisitions"], 1,
        "taken before the pools close: {err}"
    );
    assert_eq!(stats[0]["pool"]["total"], 1, "{err}");
}

#[test]
fn a_find_that_never_reached_the_pacs_prints_nothing_on_stdout() {
    for format in ["table", "json", "csv"] {
        let (code, out, err) = pacs_net(&["find", &dead_target(), "-k", "PatientID", "--format", format]);
        assert_eq!(code, 1, "{err}");
        assert!(out.is_empty(), "{format}: {out}");
        assert!(err.contains("C-FIND on") && err.contains("connection refused"), "{err}");
    }
}

#[test]
fn csv_with_no_match_is_a_header_and_stats_export_as_csv() {
    let (_scp, port) = start_our_scp(None);
    let target = format!("OURSCP@127.0.0.1:{port}");
    let (code, out, err) = pacs_net(&[
        "find",
        &target,
        "-k",
        "PatientID=NOBODY",
        "-k",
        "StudyDate",
        "--format",
        "csv",
        "--stats",
        "--stats-format",
        "csv",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "PatientID,StudyDate\n");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "a header and one row per node: {err}");
    assert!(lines[0].starts_with("node,ae_title,address,health"), "{err}");
    assert!(lines[1].starts_with(&format!("{target},OURSCP,")), "{err}");
}

// 7. Folders as users have them.

#[test]
fn a_dicomdir_is_skipped_and_not_counted() {
    let (_scp, port) = start_our_scp(None);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures().join("dicom/patient1/study1/series1/1.dcm"),
        dir.path().join("IM0001"),
    )
    .unwrap();
    write_dicomdir(&dir.path().join("DICOMDIR"));
    // Found by its meta, whatever its name.
    write_dicomdir(&dir.path().join("index.dat"));
    let report = dir.path().join("../report-dicomdir.json");
    let (code, out, err) = pacs_net(&[
        "store",
        &format!("OURSCP@127.0.0.1:{port}"),
        dir.path().to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("1 file: 1 stored, 0 warnings, 0 failed"), "{out}");
    assert!(err.contains("DICOMDIR") && !err.contains("error"), "{err}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["files_total"], 1);
    let _ = std::fs::remove_file(report);
}

#[test]
fn an_empty_folder_is_no_input_files() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = pacs_net(&["store", &dead_target(), dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("no input files"), "{err}");
}

// 8. Help that teaches, and usage errors before connecting.

#[test]
fn help_has_examples_and_exit_codes() {
    let (code, out, _err) = pacs_net(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Examples:") && out.contains("Exit codes:") && out.contains("130"),
        "{out}"
    );
    for cmd in ["echo", "store", "find"] {
        let (code, out, _err) = pacs_net(&[cmd, "--help"]);
        assert_eq!(code, 0);
        assert!(out.contains("Example") && out.contains("Exit codes"), "{cmd}: {out}");
        assert!(
            out.contains("node name from the config, or AET@HOST:PORT")
                || out.contains("Node name from the config, or AET@HOST:PORT"),
            "{out}"
        );
    }
}

#[test]
fn config_check_honours_dash_c_and_the_environment() {
    let cfg = fixtures().join("../config/hospital.example.json");
    let (code, out, err) = pacs_net(&["-c", cfg.to_str().unwrap(), "config", "check"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("MAIN_PACS"), "{out}");
    let out = Command::new(env!("CARGO_BIN_EXE_pacs-net"))
        .args(["config", "check"])
        .env("PACS_NET_CONFIG", &cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("MAIN_PACS"));
    let (code, _out, err) = pacs_net(&["config", "check"]);
    assert_eq!(code, 2);
    assert!(err.contains("needs a FILE"), "{err}");
}

#[test]
fn usage_errors_say_what_to_do() {
    let (code, _o, err) = pacs_net(&["echo", &dead_target(), "--count", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("must be at least 1"), "{err}");
    let (code, _o, err) = pacs_net(&["find", &dead_target(), "--level", "patient"]);
    assert_eq!(code, 2);
    assert!(err.contains("--model patient"), "{err}");
    let (code, _o, err) = pacs_net(&["find", &dead_target(), "-k", "Rows=abc"]);
    assert_eq!(
        code, 2,
        "a value that does not fit its VR is a usage error, before connecting: {err}"
    );
    assert!(
        err.contains("Rows") && err.contains("US") && !err.contains("refused"),
        "{err}"
    );
    let (code, _o, err) = pacs_net(&["find", &dead_target(), "-k", "StudyDate=yesterday"]);
    assert_eq!(code, 2, "{err}");
}

// 9. Nothing lost at the end or on interrupt.

#[test]
fn an_unwritable_report_is_found_before_anything_is_sent() {
    let (_scp, port) = start_our_scp(None);
    let (code, out, err) = pacs_net(&[
        "store",
        &format!("OURSCP@127.0.0.1:{port}"),
        fixtures().join("dicom").to_str().unwrap(),
        "--report",
        "/nonexistent-folder/report.json",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "nothing was sent: {out}");
    assert!(err.contains("--report /nonexistent-folder/report.json"), "{err}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_prints_the_summary_writes_the_partial_report_and_exits_130() {
    // A slow PACS: each response takes 300 ms.
    let port = free_port();
    let port_s = port.to_string();
    let _scp = start_peer(
        env!("CARGO_BIN_EXE_pacs-net"),
        &[
            "scp",
            "--port",
            &port_s,
            "--ae-title",
            "OURSCP",
            "--response-delay-ms",
            "300",
        ],
        &[],
        port,
    );
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("partial.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pacs-net"))
        .args([
            "-vv",
            "store",
            &format!("OURSCP@127.0.0.1:{port}"),
            fixtures().join("dicom").to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ])
        .env_remove("PACS_NET_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first C-STORE is on the wire, then press Ctrl-C.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "pacs-net ended early");
        if line.contains("sent C-STORE-RQ") {
            break;
        }
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    assert!(stdout.contains("stored") && stdout.contains("interrupted"), "{stdout}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["interrupted"], true);
    let done = r["results"].as_array().unwrap().len();
    assert!((1..13).contains(&done), "{r}");
    assert_eq!(r["not_started"].as_u64().unwrap() as usize + done, 13, "{r}");
    assert!(
        rest.contains("A-RELEASE") || rest.contains("closing pool"),
        "released at the end: {rest}"
    );
}

// 10. Complete help, the user's order, completions, schema.

#[test]
fn find_prints_columns_in_the_order_of_the_keys() {
    let (_scp, port) = start_our_scp(None);
    let target = format!("OURSCP@127.0.0.1:{port}");
    let (code, _o, err) = pacs_net(&["store", &target, fixtures().join("dicom").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = pacs_net(&[
        "find",
        &target,
        "-k",
        "StudyInstanceUID",
        "-k",
        "PatientID",
        "-k",
        "StudyDate",
        "--format",
        "csv",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("StudyInstanceUID,PatientID,StudyDate"), "{out}");
    let (code, out, err) = pacs_net(&["find", &target, "-k", "StudyDate", "-k", "PatientID"]);
    assert_eq!(code, 0, "{err}");
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(&header[..3], ["StudyDate", "PatientID", "StudyInstanceUID"], "{out}");
}

#[test]
fn shell_completions_and_the_config_schema() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = pacs_net(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("pacs") && out.contains("concurrency"), "{shell}: {out}");
    }
    let (code, out, err) = pacs_net(&["config", "schema"]);
    assert_eq!(code, 0, "{err}");
    let schema: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["properties"]["nodes"].is_object(), "{out}");
    let node = &schema["$defs"]["RawNode"];
    let required: Vec<&str> = node["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for f in ["ae_title", "host", "port"] {
        assert!(required.contains(&f), "{node}");
    }
}

// 11. Polish.

#[test]
fn one_file_is_one_file_and_failures_have_their_colon() {
    let (_scp, port) = start_our_scp(None);
    let target = format!("OURSCP@127.0.0.1:{port}");
    let (code, out, err) = pacs_net(&[
        "store",
        &target,
        fixtures().join("dicom/patient1/study1/series1/1.dcm").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("1 file: 1 stored"), "{out}");
    let notes = fixtures().join("broken/notes.txt");
    let (code, _out, err) = pacs_net(&["store", &target, notes.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("error: {}: not a DICOM file", notes.display())),
        "{err}"
    );
}

// 5. A stock storescp (no --fork) takes one association at a time.

#[test]
fn store_with_concurrency_4_queues_on_the_one_association_storescp_takes() {
    if !peer_available("/usr/bin/storescp") {
        return;
    }
    let port = free_port();
    let port_s = port.to_string();
    let _storescp = start_peer(
        "/usr/bin/storescp",
        &["--ignore", "--aetitle", "STORESCP", &port_s],
        &[],
        port,
    );
    let dir = tempfile::tempdir().unwrap();
    let one = fixtures().join("dicom/patient1/study1/series1/1.dcm");
    for i in 0..20 {
        std::fs::copy(&one, dir.path().join(format!("{i:02}.dcm"))).unwrap();
    }
    let (code, out, err) = pacs_net(&[
        "store",
        &format!("STORESCP@127.0.0.1:{port}"),
        dir.path().to_str().unwrap(),
        "--concurrency",
        "4",
        "--stats",
        "--stats-format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("20 files: 20 stored"), "{out}");
    let stats = json_after(&err, '[');
    let node = &stats[0];
    assert_eq!(node["resilience"]["failures"], 0, "no attempt failed: {err}");
    assert_eq!(node["resilience"]["retries"], 0, "nothing was retried: {err}");
    assert_eq!(node["pool"]["created"], 1, "{err}");
    assert_eq!(node["health"]["status"], "degraded", "{err}");
    let reasons = node["health"]["reasons"].to_string();
    assert!(reasons.contains("remote limited the pool"), "{reasons}");
}

#[test]
fn a_bad_query_value_is_not_echoed_in_the_error() {
    let (code, _o, err) = pacs_net(&["find", &dead_target(), "-k", "PatientBirthDate=19800214x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("PatientBirthDate") && !err.contains("19800214"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_second_ctrl_c_aborts_at_once() {
    // A PACS so slow that the store in flight cannot finish on its own soon.
    let port = free_port();
    let port_s = port.to_string();
    let _scp = start_peer(
        env!("CARGO_BIN_EXE_pacs-net"),
        &[
            "scp",
            "--port",
            &port_s,
            "--ae-title",
            "OURSCP",
            "--response-delay-ms",
            "60000",
        ],
        &[],
        port,
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_pacs-net"))
        .args([
            "-vv",
            "store",
            &format!("OURSCP@127.0.0.1:{port}"),
            fixtures().join("dicom").to_str().unwrap(),
        ])
        .env_remove("PACS_NET_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let mut wait_for = |what: &str| loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "pacs-net ended before {what}");
        if line.contains(what) {
            break;
        }
    };
    let sigint = |pid: u32| {
        assert!(Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap()
            .success());
    };
    wait_for("sent C-STORE-RQ");
    sigint(child.id());
    wait_for("interrupted: finishing the operations in flight");
    sigint(child.id());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    assert!(out.stdout.is_empty(), "aborted: no summary");
}

#[cfg(unix)]
#[test]
fn error_labels_are_coloured_on_a_terminal_unless_no_color() {
    // util-linux's `script` gives pacs-net a terminal.
    if !peer_available("/usr/bin/script") {
        return;
    }
    let run = |no_color: bool| {
        let cmd = format!("{} echo {}", env!("CARGO_BIN_EXE_pacs-net"), dead_target());
        let mut c = Command::new("/usr/bin/script");
        c.args(["-qec", &cmd, "/dev/null"]).stdin(Stdio::null());
        c.env_remove("NO_COLOR");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned()
    };
    let coloured = run(false);
    assert!(coloured.contains("\x1b[1;31merror:\x1b[0m"), "{coloured:?}");
    let plain = run(true);
    assert!(plain.contains("error: ") && !plain.contains('\x1b'), "{plain:?}");
}

#[cfg(unix)]
#[test]
fn the_progress_bar_rate_is_a_whole_number_of_files_per_second() {
    // util-linux's `script` gives pacs-net a terminal.
    if !peer_available("/usr/bin/script") {
        return;
    }
    // A PACS slow enough for the bar to be drawn a few times.
    let port = free_port();
    let port_s = port.to_string();
    let _scp = start_peer(
        env!("CARGO_BIN_EXE_pacs-net"),
        &[
            "scp",
            "--port",
            &port_s,
            "--ae-title",
            "OURSCP",
            "--response-delay-ms",
            "100",
        ],
        &[],
        port,
    );
    let cmd = format!(
        "{} store OURSCP@127.0.0.1:{port} {}",
        env!("CARGO_BIN_EXE_pacs-net"),
        fixtures().join("dicom").display()
    );
    let out = Command::new("/usr/bin/script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("13 files: 13 stored"), "{text:?}");
    let rates: Vec<&str> = text
        .split(" files/s")
        .filter_map(|before| before.rsplit(' ').next())
        .collect();
    assert!(text.contains(" files/s"), "the bar was drawn: {text:?}");
    for rate in &rates[..rates.len() - 1] {
        assert!(rate.parse::<u64>().is_ok(), "rate {rate:?} in {text:?}");
    }
}
