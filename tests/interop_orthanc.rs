//! Interoperability with Orthanc: C-ECHO, C-STORE of every fixture and C-FIND, with
//! what Orthanc received checked through its REST API. Orthanc is started by the
//! test with its own config in a temp dir, on free loopback ports.

mod common;

use common::*;

#[test]
fn echo_store_find_against_orthanc() {
    if !peer_available("/usr/sbin/Orthanc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_orthanc, port, http) = start_orthanc(dir.path(), serde_json::json!({}));
    let target = format!("ORTHANC@127.0.0.1:{port}");

    let (code, stdout, stderr) = pacs_net(&["echo", &target, "--count", "3"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    let expected = dicom_fixture_files().len();
    let (code, stdout, stderr) = pacs_net(&[
        "store",
        &target,
        fixtures().join("dicom").to_str().unwrap(),
        "--concurrency",
        "3",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("{expected} files: {expected} stored")),
        "{stdout}"
    );
    let instances: serde_json::Value = serde_json::from_str(&http_get(http, "/instances")).unwrap();
    assert_eq!(
        instances.as_array().unwrap().len(),
        expected,
        "Orthanc holds {instances}"
    );
    let patients: serde_json::Value = serde_json::from_str(&http_get(http, "/patients")).unwrap();
    assert_eq!(patients.as_array().unwrap().len(), 3);

    // C-FIND, DICOM JSON: DOE^JANE (PNT-0001) has two studies.
    let (code, stdout, stderr) = pacs_net(&[
        "find",
        &target,
        "-k",
        "PatientID=PNT-0001",
        "-k",
        "PatientName",
        "-k",
        "StudyInstanceUID",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let matches: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let matches = matches.as_array().unwrap();
    assert_eq!(matches.len(), 2, "{stdout}");
    for m in matches {
        assert_eq!(m["00100020"]["vr"], "LO");
        assert_eq!(m["00100020"]["Value"][0], "PNT-0001");
        assert_eq!(m["00100010"]["Value"][0]["Alphabetic"], "DOE^JANE");
        assert!(m["0020000D"]["Value"][0]
            .as_str()
            .unwrap()
            .starts_with("1.2.826.0.1.3680043.10.1234.1."));
    }

    // Series level, patient root, CSV; and --limit with C-CANCEL exits 0.
    let (code, stdout, stderr) = pacs_net(&[
        "find",
        &target,
        "--model",
        "patient",
        "--level",
        "series",
        "-k",
        "PatientID=PNT-0002",
        "-k",
        "StudyInstanceUID",
        "-k",
        "Modality",
        "--format",
        "csv",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().count(), 1 + 2, "{stdout}");
    let (code, stdout, stderr) = pacs_net(&["find", &target, "--level", "image", "--limit", "1", "--format", "json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let matches: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(matches.as_array().unwrap().len(), 1);
}

#[test]
fn orthanc_rejects_a_wrong_called_ae_permanently() {
    if !peer_available("/usr/sbin/Orthanc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (_orthanc, port, _http) = start_orthanc(dir.path(), serde_json::json!({}));
    let (code, stdout, stderr) = pacs_net(&["echo", &format!("WRONG@127.0.0.1:{port}")]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("rejected"), "{stderr}");
    assert!(stderr.contains("permanent"), "{stderr}");
}
