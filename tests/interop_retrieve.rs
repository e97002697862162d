//! Retrieve interoperability: `pacs-net get` and `pacs-net move` against Orthanc
//! (C-GET and C-MOVE SCP, our AE in its DicomModalities), a third AE (DCMTK
//! `storescp`) as a move destination, and our own `pacs-net scp` as the
//! Query/Retrieve SCP, each started by the test with its own config on free
//! loopback ports. What came back is checked on disk: the layout, the file meta,
//! and the data set byte for byte.

mod common;

use std::path::Path;

use common::*;
use pacs_net::dimse::InstanceFile;

const STUDY1: &str = "1.2.826.0.1.3680043.10.1234.1.1";
const SERIES_1_1: &str = "1.2.826.0.1.3680043.10.1234.2.1.1";
const SOP_1_1_2: &str = "1.2.826.0.1.3680043.10.1234.3.1.1.2";

fn orthanc_holding_fixtures(dir: &Path) -> (Peer, String) {
    orthanc_with_modalities(dir, serde_json::json!({}))
}

fn orthanc_with_modalities(dir: &Path, modalities: serde_json::Value) -> (Peer, String) {
    let (peer, port, _http) = start_orthanc(
        dir,
        serde_json::json!({
            "DicomAlwaysAllowGet": true,
            "DicomAlwaysAllowMove": true,
            "DicomModalities": modalities
        }),
    );
    let target = format!("ORTHANC@127.0.0.1:{port}");
    let (code, stdout, stderr) = pacs_net(&["store", &target, fixtures().join("dicom").to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    (peer, target)
}

/// The data set bytes of a Part 10 file, and its transfer syntax.
fn data_set(path: &Path) -> (String, Vec<u8>) {
    let f = InstanceFile::open(path).unwrap();
    let bytes = std::fs::read(path).unwrap();
    (f.transfer_syntax.clone(), bytes[f.data_offset as usize..].to_vec())
}

fn fixture_with_uid(uid: &str) -> std::path::PathBuf {
    dicom_fixture_files()
        .into_iter()
        .find(|p| InstanceFile::open(p).unwrap().sop_instance_uid == uid)
        .unwrap()
}

/// Whether `f` came back in the transfer syntax it was stored in; if so, its data
/// set must be byte for byte the stored one.
fn same_as_stored(f: &Path) -> bool {
    let got = InstanceFile::open(f).unwrap();
    let (ts, bytes) = data_set(f);
    let (orig_ts, orig) = data_set(&fixture_with_uid(&got.sop_instance_uid));
    if ts != orig_ts {
        return false;
    }
    assert_eq!(bytes, orig, "{} differs from what was stored", got.sop_instance_uid);
    true
}

/// A `--report` file, parsed.
fn read_report(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A third AE (DCMTK `storescp`, AE title THIRD) on `port`, writing under
/// `dir/third`: the peer and that folder.
fn start_third_ae(dir: &Path, port: u16) -> (Peer, std::path::PathBuf) {
    let third_dir = dir.join("third");
    std::fs::create_dir_all(&third_dir).unwrap();
    let peer = start_peer(
        "/usr/bin/storescp",
        &[
            "--aetitle",
            "THIRD",
            "+xa",
            "--output-directory",
            third_dir.to_str().unwrap(),
            &port.to_string(),
        ],
        &[],
        port,
    );
    (peer, third_dir)
}

#[test]
fn get_a_study_series_and_image_from_orthanc() {
    if !peer_available("/usr/sbin/Orthanc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_orthanc, target) = orthanc_holding_fixtures(dir.path());

    // Study level, with a report.
    let out = dir.path().join("study");
    let report = dir.path().join("get.json");
    let (code, stdout, stderr) = pacs_net(&[
        "get",
        &target,
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("5 completed, 0 warning, 0 failed, 0 remaining"),
        "{stdout}"
    );
    let files = files_under(&out);
    assert_eq!(files.len(), 5, "{files:?}");
    let r = read_report(&report);
    assert_eq!(r["operation"], "get");
    assert_eq!(r["final_status"], "0000");
    assert_eq!(r["completed"], 5);
    assert_eq!(r["failed"], 0);
    assert_eq!(r["instances"].as_array().unwrap().len(), 5);
    assert_eq!(r["failed_sop_instance_uids"], serde_json::json!([]));
    let mut identical = 0;
    for f in &files {
        let rel = f.strip_prefix(&out).unwrap();
        assert_eq!(rel.iter().next().unwrap().to_str().unwrap(), STUDY1, "{}", f.display());
        let got = InstanceFile::open(f).unwrap();
        assert_eq!(
            rel.file_name().unwrap().to_str().unwrap(),
            format!("{}.dcm", got.sop_instance_uid)
        );
        if same_as_stored(f) {
            identical += 1;
        }
    }
    assert!(identical >= 3, "only {identical} came back in their own syntax");

    // Series level.
    let out = dir.path().join("series");
    let (code, stdout, stderr) = pacs_net(&[
        "get",
        &target,
        "--level",
        "series",
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "-k",
        &format!("SeriesInstanceUID={SERIES_1_1}"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(files_under(&out.join(STUDY1).join(SERIES_1_1)).len(), 3);

    // Image level.
    let out = dir.path().join("image");
    let (code, stdout, stderr) = pacs_net(&[
        "get",
        &target,
        "--level",
        "image",
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "-k",
        &format!("SeriesInstanceUID={SERIES_1_1}"),
        "-k",
        &format!("SOPInstanceUID={SOP_1_1_2}"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let files = files_under(&out);
    assert_eq!(files.len(), 1);
    assert!(files[0].ends_with(format!("{STUDY1}/{SERIES_1_1}/{SOP_1_1_2}.dcm")));

    // Patient root, patient level: both studies of PNT-0001.
    let out = dir.path().join("patient");
    let (code, stdout, stderr) = pacs_net(&[
        "get",
        &target,
        "--model",
        "patient",
        "--level",
        "patient",
        "-k",
        "PatientID=PNT-0001",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(files_under(&out).len(), 8);
}

#[test]
fn move_from_orthanc_to_us_to_a_third_ae_and_to_nobody() {
    if !peer_available("/usr/sbin/Orthanc") || !peer_available("/usr/bin/storescp") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let listen = free_port();
    let third = free_port();
    let (_orthanc, target) = orthanc_with_modalities(
        dir.path(),
        serde_json::json!({
            "us": ["PACSNET", "127.0.0.1", listen],
            "third": ["THIRD", "127.0.0.1", third]
        }),
    );

    // To ourselves: the listener receives them, under DIR/<study>/<series>/.
    let out = dir.path().join("moved");
    let report = dir.path().join("move.json");
    let (code, stdout, stderr) = pacs_net(&[
        "move",
        &target,
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "--out",
        out.to_str().unwrap(),
        "--port",
        &listen.to_string(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("5 completed, 0 warning, 0 failed, 0 remaining"),
        "{stdout}"
    );
    let files = files_under(&out);
    assert_eq!(files.len(), 5, "{files:?}");
    for f in &files {
        assert!(f.strip_prefix(&out).unwrap().starts_with(STUDY1), "{}", f.display());
        same_as_stored(f);
    }
    let r = read_report(&report);
    assert_eq!(r["operation"], "move");
    assert_eq!(r["destination"], "PACSNET");
    assert_eq!(r["completed"], 5);
    assert_eq!(r["instances"].as_array().unwrap().len(), 5, "matched to the move: {r}");

    // To a third AE: followed through the counts; the files are at the third AE.
    let (_storescp, third_dir) = start_third_ae(dir.path(), third);
    let (code, stdout, stderr) = pacs_net(&[
        "move",
        &target,
        "--dest",
        "THIRD",
        "--level",
        "series",
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "-k",
        &format!("SeriesInstanceUID={SERIES_1_1}"),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("3 completed, 0 warning, 0 failed"), "{stdout}");
    assert_eq!(files_under(&third_dir).len(), 3);

    // To an AE Orthanc does not know: it fails, and the error names the destination.
    let (code, stdout, stderr) = pacs_net(&[
        "move",
        &target,
        "--dest",
        "NOBODY",
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("destination NOBODY"), "{stderr}");
    assert!(stdout.is_empty(), "no result for a failed move: {stdout}");
}

/// The paths under `out`, relative to it, sorted.
fn layout(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = files_under(out)
        .iter()
        .map(|f| f.strip_prefix(out).unwrap().display().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn get_and_move_spread_over_associations_one_series_each() {
    if !peer_available("/usr/sbin/Orthanc") || !peer_available("/usr/bin/storescp") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let listen = free_port();
    let third = free_port();
    let (_orthanc, target) = orthanc_with_modalities(
        dir.path(),
        serde_json::json!({
            "us": ["PACSNET", "127.0.0.1", listen],
            "third": ["THIRD", "127.0.0.1", third]
        }),
    );
    let study = format!("StudyInstanceUID={STUDY1}");

    // One C-GET, then the same study over up to 4 associations (it has 2 series):
    // the same files, each data set as stored, one summary and report for the whole.
    let one = dir.path().join("one");
    let (code, stdout, stderr) = pacs_net(&["get", &target, "-k", &study, "--out", one.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let spread = dir.path().join("spread");
    let report = dir.path().join("spread.json");
    let (code, stdout, stderr) = pacs_net(&[
        "-vv",
        "get",
        &target,
        "-k",
        &study,
        "--out",
        spread.to_str().unwrap(),
        "--concurrency",
        "4",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("one series each"),
        "the retrieve was not spread: {stderr}"
    );
    assert!(
        stdout.contains("5 completed, 0 warning, 0 failed, 0 remaining"),
        "{stdout}"
    );
    assert_eq!(layout(&spread), layout(&one));
    assert_eq!(layout(&spread).len(), 5);
    for f in files_under(&spread) {
        same_as_stored(&f);
    }
    let r = read_report(&report);
    assert_eq!(r["final_status"], "0000");
    assert_eq!(r["completed"], 5);
    assert_eq!(r["remaining"], 0);
    assert_eq!(r["instances"].as_array().unwrap().len(), 5);

    // Patient Root, PATIENT level: both studies of the patient, series by series.
    let patient = dir.path().join("patient");
    let (code, stdout, stderr) = pacs_net(&[
        "get",
        &target,
        "--model",
        "patient",
        "--level",
        "patient",
        "-k",
        "PatientID=PNT-0001",
        "--out",
        patient.to_str().unwrap(),
        "--concurrency",
        "3",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("8 completed, 0 warning, 0 failed"), "{stdout}");
    assert_eq!(files_under(&patient).len(), 8);

    // C-MOVE to ourselves over 2 associations: every instance is matched to one of
    // our moves (each part has its own Message ID) and counted once.
    let moved = dir.path().join("moved");
    let report = dir.path().join("move.json");
    let (code, stdout, stderr) = pacs_net(&[
        "move",
        &target,
        "-k",
        &study,
        "--out",
        moved.to_str().unwrap(),
        "--port",
        &listen.to_string(),
        "--concurrency",
        "2",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("5 completed, 0 warning, 0 failed, 0 remaining"),
        "{stdout}"
    );
    assert_eq!(layout(&moved), layout(&one));
    let r = read_report(&report);
    assert_eq!(r["instances"].as_array().unwrap().len(), 5, "matched to the moves: {r}");

    // To a third AE: the counts of both parts, summed.
    let (_storescp, third_dir) = start_third_ae(dir.path(), third);
    let (code, stdout, stderr) = pacs_net(&["move", &target, "--dest", "THIRD", "-k", &study, "--concurrency", "2"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("5 completed, 0 warning, 0 failed"), "{stdout}");
    assert_eq!(files_under(&third_dir).len(), 5);

    // An IMAGE-level retrieve is never split: one C-GET with the keys as given.
    let image = dir.path().join("image");
    let (code, stdout, stderr) = pacs_net(&[
        "-vv",
        "get",
        &target,
        "--level",
        "image",
        "-k",
        &study,
        "-k",
        &format!("SeriesInstanceUID={SERIES_1_1}"),
        "-k",
        &format!("SOPInstanceUID={SOP_1_1_2}"),
        "--out",
        image.to_str().unwrap(),
        "--concurrency",
        "4",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(!stderr.contains("one series each"), "{stderr}");
    assert_eq!(files_under(&image).len(), 1);
}

/// A PACS that refuses C-FIND (Orthanc aborts the association for an AE it does
/// not list) but serves C-GET: the C-FINDs that plan the retrieve (SOP classes,
/// series) fail once each, are not retried, and do not open the node's breaker;
/// the retrieve runs as one C-GET with the keys as given and the default storage
/// classes, and brings everything back.
#[test]
fn a_pacs_that_refuses_c_find_still_serves_get() {
    if !peer_available("/usr/sbin/Orthanc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_orthanc, port, _http) = start_orthanc(
        dir.path(),
        serde_json::json!({"DicomAlwaysAllowFind": false, "DicomAlwaysAllowGet": true}),
    );
    let target = format!("ORTHANC@127.0.0.1:{port}");
    let (code, stdout, stderr) = pacs_net(&["store", &target, fixtures().join("dicom").to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let (code, stdout, _) = pacs_net(&[
        "find",
        &target,
        "--level",
        "series",
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
    ]);
    assert_eq!(code, 1, "this Orthanc must refuse C-FIND: {stdout}");
    for (name, extra) in [("one", &[][..]), ("spread", &["--concurrency", "4"][..])] {
        let out = dir.path().join(name);
        let mut args = vec!["-vv", "get", &target, "-k", &format!("StudyInstanceUID={STUDY1}")]
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        args.extend(["--out".to_string(), out.to_str().unwrap().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, stdout, stderr) = pacs_net(&args);
        assert_eq!(code, 0, "{name}: {stdout}\n{stderr}");
        assert!(!stderr.contains("one series each"), "{stderr}");
        assert!(!stderr.contains("circuit opened"), "{name}: {stderr}");
        assert!(stdout.contains("5 completed, 0 warning, 0 failed"), "{stdout}");
        assert_eq!(files_under(&out.join(STUDY1)).len(), 5);
    }
}

#[test]
fn our_scp_serves_get_and_move_and_answers_a801() {
    let dir = tempfile::tempdir().unwrap();
    let listen = free_port();
    let port = free_port();
    let held = dir.path().join("held");
    let peer = start_peer(
        env!("CARGO_BIN_EXE_pacs-net"),
        &[
            "scp",
            "--port",
            &port.to_string(),
            "--ae-title",
            "OURQR",
            "--storage",
            held.to_str().unwrap(),
            "--move-dest",
            &format!("PACSNET=127.0.0.1:{listen}"),
        ],
        &[],
        port,
    );
    let target = format!("OURQR@127.0.0.1:{port}");
    let (code, stdout, stderr) = pacs_net(&["store", &target, fixtures().join("dicom").to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    let out = dir.path().join("got");
    let (code, stdout, stderr) = pacs_net(&[
        "get",
        &target,
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(files_under(&out).len(), 5);

    let out = dir.path().join("moved");
    let (code, stdout, stderr) = pacs_net(&[
        "move",
        &target,
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "--out",
        out.to_str().unwrap(),
        "--port",
        &listen.to_string(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(files_under(&out).len(), 5);

    let (code, stdout, stderr) = pacs_net(&[
        "move",
        &target,
        "--dest",
        "NOBODY",
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("destination NOBODY") && stderr.contains("A801"),
        "{stderr}"
    );
    drop(peer);
}

/// DCMTK `dcmqrscp` on a free port with its own database folder, `DCMQR` as its
/// AE title, our AE (`PACSNET`) as a known move destination at `listen`.
fn start_dcmqrscp(dir: &Path, listen: u16, extra: &[&str]) -> (Peer, String) {
    let port = free_port();
    let db = dir.join("db");
    std::fs::create_dir_all(&db).unwrap();
    let cfg = dir.join("dcmqrscp.cfg");
    std::fs::write(
        &cfg,
        format!(
            "NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n\n\
             HostTable BEGIN\npacsnet = (PACSNET, 127.0.0.1, {listen})\nHostTable END\n\n\
             VendorTable BEGIN\nVendorTable END\n\n\
             AETable BEGIN\nDCMQR {} RW (200, 1024mb) ANY\nAETable END\n",
            db.display()
        ),
    )
    .unwrap();
    let port_s = port.to_string();
    let mut args = vec!["-c", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(&port_s);
    let peer = start_peer("/usr/bin/dcmqrscp", &args, &[], port);
    (peer, format!("DCMQR@127.0.0.1:{port}"))
}

/// Fill dcmqrscp's database with study 1 through DCMTK's own `storescu`.
fn fill_with_storescu(target: &str) {
    let port = target.rsplit(':').next().unwrap();
    let files: Vec<String> = dicom_fixture_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("patient1/study1/"))
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(files.len(), 5);
    let out = std::process::Command::new("/usr/bin/storescu")
        .args(["-aec", "DCMQR", "127.0.0.1", port])
        .args(&files)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn get_and_move_from_dcmqrscp_and_a_pacs_without_c_get() {
    if !peer_available("/usr/bin/dcmqrscp") || !peer_available("/usr/bin/storescu") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let listen = free_port();
    let (_qr, target) = start_dcmqrscp(&dir.path().join("qr"), listen, &[]);
    fill_with_storescu(&target);

    let out = dir.path().join("got");
    let (code, stdout, stderr) = pacs_net(&[
        "get",
        &target,
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("5 completed, 0 warning, 0 failed"), "{stdout}");
    assert_eq!(files_under(&out.join(STUDY1)).len(), 5);

    // One series per association: a strict hierarchical SCP lists a study's series,
    // and serves each series' C-GET and C-MOVE.
    let out = dir.path().join("spread");
    let (code, stdout, stderr) = pacs_net(&[
        "-vv",
        "get",
        &target,
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "--out",
        out.to_str().unwrap(),
        "--concurrency",
        "2",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("one series each"), "{stderr}");
    assert!(
        stdout.contains("5 completed, 0 warning, 0 failed, 0 remaining"),
        "{stdout}"
    );
    assert_eq!(files_under(&out.join(STUDY1)).len(), 5);
    let out = dir.path().join("spread-moved");
    let (code, stdout, stderr) = pacs_net(&[
        "move",
        &target,
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "--out",
        out.to_str().unwrap(),
        "--port",
        &listen.to_string(),
        "--concurrency",
        "2",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("5 completed, 0 warning, 0 failed, 0 remaining"),
        "{stdout}"
    );
    assert_eq!(files_under(&out.join(STUDY1)).len(), 5);
    // PATIENT level, Patient Root: the patient's series, each named under its study.
    let out = dir.path().join("patient");
    let (code, stdout, stderr) = pacs_net(&[
        "-vv",
        "get",
        &target,
        "--model",
        "patient",
        "--level",
        "patient",
        "-k",
        "PatientID=PNT-0001",
        "--out",
        out.to_str().unwrap(),
        "--concurrency",
        "2",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("one series each"), "{stderr}");
    assert_eq!(files_under(&out.join(STUDY1)).len(), 5, "{stdout}");

    let out = dir.path().join("moved");
    let (code, stdout, stderr) = pacs_net(&[
        "move",
        &target,
        "--level",
        "series",
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "-k",
        &format!("SeriesInstanceUID={SERIES_1_1}"),
        "--out",
        out.to_str().unwrap(),
        "--port",
        &listen.to_string(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(files_under(&out.join(STUDY1).join(SERIES_1_1)).len(), 3);

    // dcmqrscp answers an unknown destination with A801.
    let (code, stdout, stderr) = pacs_net(&[
        "move",
        &target,
        "--dest",
        "NOBODY",
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("destination NOBODY") && stderr.contains("A801"),
        "{stderr}"
    );

    // A PACS without C-GET: a clear error naming it, and no retry.
    let (_noget, target) = start_dcmqrscp(&dir.path().join("noget"), listen, &["--disable-get"]);
    let out = dir.path().join("none");
    let (code, stdout, stderr) = pacs_net(&[
        "get",
        &target,
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("DCMQR does not support C-GET"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
}

/// The pynetdicom C-GET SCP of tests/peers over the fixtures of patient 1.
fn start_pynetdicom_qr(python: &Path, extra: &[&str]) -> (Peer, String) {
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/qr_get_scp.py");
    let held = fixtures().join("dicom/patient1");
    let port_s = port.to_string();
    let mut args = vec![script.to_str().unwrap(), &port_s, held.to_str().unwrap()];
    args.extend_from_slice(extra);
    let peer = start_peer(python.to_str().unwrap(), &args, &[], port);
    (peer, format!("PYQR@127.0.0.1:{port}"))
}

#[test]
fn get_from_pynetdicom_partial_failure_and_levels() {
    let Some(python) = python_with(&["pynetdicom"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let failing = "1.2.826.0.1.3680043.10.1234.3.1.1.3";
    let (_qr, target) = start_pynetdicom_qr(&python, &["--bogus-class", failing]);

    // One sub-operation fails: B000, its UID in the report, exit 1, the rest written.
    let out = dir.path().join("study");
    let report = dir.path().join("get.json");
    let (code, stdout, stderr) = pacs_net(&[
        "get",
        &target,
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("4 completed, 0 warning, 1 failed, 0 remaining"),
        "{stdout}"
    );
    assert!(stderr.contains("warning B000"), "{stderr}");
    let r = read_report(&report);
    assert_eq!(r["final_status"], "B000");
    assert_eq!(r["failed"], 1);
    assert_eq!(r["failed_sop_instance_uids"], serde_json::json!([failing]));
    assert_eq!(files_under(&out).len(), 4);

    // The same, one series per association: the series with the failure ends B000,
    // the other 0000; together, B000 with the one failed UID.
    let out = dir.path().join("spread");
    let report = dir.path().join("spread.json");
    let (code, stdout, stderr) = pacs_net(&[
        "-vv",
        "get",
        &target,
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--concurrency",
        "2",
    ]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("one series each"), "{stderr}");
    assert!(
        stdout.contains("4 completed, 0 warning, 1 failed, 0 remaining"),
        "{stdout}"
    );
    let r = read_report(&report);
    assert_eq!(r["final_status"], "B000");
    assert_eq!(r["failed_sop_instance_uids"], serde_json::json!([failing]));
    assert_eq!(files_under(&out).len(), 4);

    // Series and image level.
    let out = dir.path().join("series");
    let (code, stdout, stderr) = pacs_net(&[
        "get",
        &target,
        "--level",
        "series",
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "-k",
        "SeriesInstanceUID=1.2.826.0.1.3680043.10.1234.2.1.2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(files_under(&out).len(), 2);
    let out = dir.path().join("image");
    let (code, stdout, stderr) = pacs_net(&[
        "get",
        &target,
        "--level",
        "image",
        "-k",
        &format!("StudyInstanceUID={STUDY1}"),
        "-k",
        &format!("SeriesInstanceUID={SERIES_1_1}"),
        "-k",
        &format!("SOPInstanceUID={SOP_1_1_2}"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(files_under(&out).len(), 1);
}

#[test]
fn ctrl_c_cancels_a_get_mid_retrieve() {
    ctrl_c_mid_get(&[]);
}

/// Spread over associations: the parts under way are cancelled, the rest never
/// start, and the one report says so.
#[test]
fn ctrl_c_cancels_every_part_of_a_spread_get() {
    ctrl_c_mid_get(&["--concurrency", "2"]);
}

fn ctrl_c_mid_get(extra: &[&str]) {
    let Some(python) = python_with(&["pynetdicom"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_qr, target) = start_pynetdicom_qr(&python, &["--delay", "0.4"]);
    let out = dir.path().join("study");
    let report = dir.path().join("get.json");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_pacs-net"))
        .args([
            "get",
            &target,
            "-k",
            "PatientID=PNT-0001",
            "--model",
            "patient",
            "--level",
            "patient",
        ])
        .args(["--out", out.to_str().unwrap(), "--report", report.to_str().unwrap()])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first instance is written, Ctrl-C (SIGINT to its PID).
    for _ in 0..200 {
        if files_under(&out)
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "dcm"))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{stderr}");
    let r = read_report(&report);
    assert_eq!(r["final_status"], "FE00", "{r}");
    assert_eq!(r["cancelled"], true);
    let written = files_under(&out).len();
    assert!((1..8).contains(&written), "stopped mid-way: {written} of 8");
    assert!(stdout.contains("remaining"), "the summary is printed: {stdout}");
}
