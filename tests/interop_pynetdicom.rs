//! Interoperability with pynetdicom (a third implementation): our SCU against its
//! storescp, and its storescu/findscu against our SCP. CI installs pynetdicom in a
//! venv under target/pyenv (see .ci/run); elsewhere set PACS_NET_PYTHON to a python
//! that can import pynetdicom.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn python() -> Option<PathBuf> {
    python_with(&["pynetdicom"])
}

#[test]
fn store_and_echo_to_pynetdicom_storescp() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let port = free_port();
    let _peer = start_peer(
        py.to_str().unwrap(),
        &[
            "-m",
            "pynetdicom",
            "storescp",
            &port.to_string(),
            "-aet",
            "PYSCP",
            "-od",
            out.to_str().unwrap(),
        ],
        &[],
        port,
    );
    let target = format!("PYSCP@127.0.0.1:{port}");
    let (code, stdout, stderr) = pacs_net(&["echo", &target, "--count", "3"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let n = dicom_fixture_files().len();
    let (code, stdout, stderr) = pacs_net(&[
        "store",
        &target,
        fixtures().join("dicom").to_str().unwrap(),
        "--concurrency",
        "2",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("{n} files: {n} stored")), "{stdout}");
    let received = files_under(&out);
    assert_eq!(received.len(), n);
    // The peer's files parse (pydicom reads each, element by element), and together they carry
    // exactly the SOP Instance UIDs sent.
    let read = Command::new(&py)
        .args([
            "-c",
            "import sys, pydicom\n\
             for f in sys.argv[1:]:\n\
             \x20   ds = pydicom.dcmread(f)\n\
             \x20   ds.walk(lambda d, e: None)\n\
             \x20   print(ds.SOPInstanceUID)",
        ])
        .args(&received)
        .output()
        .unwrap();
    assert!(
        read.status.success(),
        "pydicom: {}",
        String::from_utf8_lossy(&read.stderr)
    );
    let mut uids: Vec<String> = String::from_utf8_lossy(&read.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    uids.sort();
    assert_eq!(uids, dicom_fixture_uids());
}

#[test]
fn pynetdicom_scus_against_our_scp() {
    let Some(py) = python() else { return };
    let storage = tempfile::tempdir().unwrap();
    let (_scp, port) = start_our_scp(Some(storage.path()));
    let p = port.to_string();
    let ct = fixtures().join("dicom/patient1/study1/series1/1.dcm");
    let store = Command::new(&py)
        .args(["-m", "pynetdicom", "storescu", "-aec", "OURSCP", "127.0.0.1", &p])
        .arg(&ct)
        .output()
        .unwrap();
    assert!(
        store.status.success(),
        "storescu: {}",
        String::from_utf8_lossy(&store.stderr)
    );
    assert_eq!(files_under(storage.path()).len(), 1);
    let find = Command::new(&py)
        .args([
            "-m",
            "pynetdicom",
            "findscu",
            "-S",
            "-aec",
            "OURSCP",
            "-k",
            "QueryRetrieveLevel=STUDY",
        ])
        .args([
            "-k",
            "PatientID=PNT-0001",
            "-k",
            "StudyInstanceUID=",
            "127.0.0.1",
            &p,
            "-d",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&find.stderr).to_string() + &String::from_utf8_lossy(&find.stdout);
    assert!(find.status.success(), "findscu: {text}");
    assert!(text.contains("1.2.826.0.1.3680043.10.1234.1.1"), "{text}");
}
