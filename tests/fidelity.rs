//! Every valid file arrives as it is (issue 8): the data set's own SOP UIDs in the
//! command, each file in its own transfer syntax where the peer takes it, streamed
//! conversion where it does not (compared element by element with an independent
//! decoder, dicom-object), deflated files, PDUs capped for a peer announcing no
//! limit, and corrupt files refused before anything is sent.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::*;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use pacs_net::association::{uids, Association, AssociationParams, ContextRequest};
use pacs_net::config::Timeouts;
use pacs_net::dimse::{self, DimsePriority, FileError, InstanceFile, Status};
use pacs_net::scp::{Behavior, Scp, ScpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn multiframe() -> PathBuf {
    fixtures().join("dicom/multiframe/mr_multiframe_40.dcm")
}

async fn scp_accepting(ts: Option<&[&str]>, dir: &Path) -> Scp {
    let config = ScpConfig {
        storage_dir: Some(dir.to_path_buf()),
        behavior: Behavior {
            transfer_syntaxes: ts.map(|t| t.iter().map(|s| s.to_string()).collect()),
            ..Behavior::default()
        },
        ..ScpConfig::default()
    };
    Scp::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn params(port: u16) -> AssociationParams {
    AssociationParams {
        calling_ae: "FIDELITY".into(),
        called_ae: "PACSNET_SCP".into(),
        host: "127.0.0.1".into(),
        port,
        max_pdu_length: 16384,
        max_send_pdu_length: 0,
        timeouts: Timeouts::default(),
        security: Default::default(),
    }
}

/// Store `file` on a fresh association negotiated for it.
async fn store_one(port: u16, file: &InstanceFile) -> dimse::StoreResponse {
    let req = ContextRequest::store(&file.sop_class_uid, &file.transfer_syntax);
    let mut assoc = Association::establish(&params(port), &req.profile).await.unwrap();
    let rsp = dimse::store(&mut assoc, file, DimsePriority::Medium).await.unwrap();
    assoc.release().await;
    rsp
}

/// A Part 10 file: preamble, a meta group (with its group length) and `data`.
fn part10(sop_class: &str, sop_instance: &str, ts: &str, data: &[u8]) -> Vec<u8> {
    fn el(out: &mut Vec<u8>, elem: u16, vr: &[u8; 2], value: &[u8]) {
        let mut v = value.to_vec();
        if v.len() % 2 == 1 {
            v.push(if vr == b"UI" { 0 } else { b' ' });
        }
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&elem.to_le_bytes());
        out.extend_from_slice(vr);
        if vr == b"OB" {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        } else {
            out.extend_from_slice(&(v.len() as u16).to_le_bytes());
        }
        out.extend_from_slice(&v);
    }
    let mut meta = Vec::new();
    el(&mut meta, 0x0001, b"OB", &[0, 1]);
    el(&mut meta, 0x0002, b"UI", sop_class.as_bytes());
    el(&mut meta, 0x0003, b"UI", sop_instance.as_bytes());
    el(&mut meta, 0x0010, b"UI", ts.as_bytes());
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    el(&mut out, 0x0000, b"UL", &(meta.len() as u32).to_le_bytes());
    out.extend_from_slice(&meta);
    out.extend_from_slice(data);
    out
}

/// An Explicit VR LE data set element.
fn el_ex(out: &mut Vec<u8>, tag: (u16, u16), vr: &[u8; 2], value: &[u8]) {
    let mut v = value.to_vec();
    if v.len() % 2 == 1 {
        v.push(0);
    }
    out.extend_from_slice(&tag.0.to_le_bytes());
    out.extend_from_slice(&tag.1.to_le_bytes());
    out.extend_from_slice(vr);
    out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    out.extend_from_slice(&v);
}

/// The data set bytes of a Part 10 file, as stored.
fn data_set_bytes(path: &Path) -> Vec<u8> {
    let file = InstanceFile::open(path).unwrap();
    let mut bytes = Vec::new();
    std::fs::File::open(path).unwrap().read_to_end(&mut bytes).unwrap();
    bytes[file.data_offset as usize..].to_vec()
}

/// The same elements with the same values, by an independent decoder; group
/// lengths aside (dropped on conversion, by design).
fn assert_same_elements(a: &InMemDicomObject, b: &InMemDicomObject, what: &str) {
    let tags_a: Vec<_> = a.iter().map(|e| e.header().tag).filter(|t| t.1 != 0).collect();
    let tags_b: Vec<_> = b.iter().map(|e| e.header().tag).filter(|t| t.1 != 0).collect();
    assert_eq!(tags_a, tags_b, "{what}: same attributes");
    for e in a.iter().filter(|e| e.header().tag.1 != 0) {
        let other = b.element(e.header().tag).unwrap();
        match (e.value().primitive(), other.value().primitive()) {
            (Some(x), Some(y)) => assert_eq!(x.to_bytes(), y.to_bytes(), "{what}: value of {}", e.header().tag),
            _ => {
                let (xs, ys) = (e.items(), other.items());
                assert_eq!(
                    xs.map(|i| i.len()),
                    ys.map(|i| i.len()),
                    "{what}: items of {}",
                    e.header().tag
                );
                if let (Some(xs), Some(ys)) = (xs, ys) {
                    for (x, y) in xs.iter().zip(ys) {
                        assert_same_elements(x, y, what);
                    }
                }
            }
        }
    }
}

/// The single file our SCP wrote, opened.
fn received(dir: &Path) -> dicom_object::DefaultDicomObject {
    let files = files_under(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    OpenFileOptions::new().open_file(&files[0]).unwrap()
}

fn write_in(ts: &str, src: &Path, dst: &Path) {
    use dicom_encoding::TransferSyntaxIndex;
    let mut obj = OpenFileOptions::new().open_file(src).unwrap();
    let _ = dicom_transfer_syntax_registry::TransferSyntaxRegistry.get(ts).unwrap();
    obj.meta_mut().transfer_syntax = ts.to_string();
    obj.write_to_file(dst).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_sets_uids_are_sent_when_the_meta_disagrees() {
    let mut data = Vec::new();
    el_ex(&mut data, (0x0008, 0x0016), b"UI", b"1.2.840.10008.5.1.4.1.1.7");
    el_ex(&mut data, (0x0008, 0x0018), b"UI", b"1.2.3.4.5.6.7.2");
    el_ex(&mut data, (0x0010, 0x0020), b"LO", b"PID-1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mismatch.dcm");
    std::fs::write(
        &path,
        part10("1.2.840.10008.5.1.4.1.1.2", "9.9.9", uids::EXPLICIT_VR_LE, &data),
    )
    .unwrap();
    let file = InstanceFile::open(&path).unwrap();
    assert_eq!(file.sop_class_uid, "1.2.840.10008.5.1.4.1.1.7");
    assert_eq!(file.sop_instance_uid, "1.2.3.4.5.6.7.2");
    let note = file.meta_mismatch.clone().unwrap();
    assert!(note.contains("9.9.9") && note.contains("1.2.3.4.5.6.7.2"), "{note}");

    // Through the CLI: the report names the data set's UIDs, with the note.
    let out = tempfile::tempdir().unwrap();
    let scp = scp_accepting(None, out.path()).await;
    let report = dir.path().join("report.json");
    let target = format!("PACSNET_SCP@127.0.0.1:{}", scp.port());
    let (code, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let path = path;
        let report = report.clone();
        let r = pacs_net(&[
            "store",
            &target,
            path.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--no-progress",
        ]);
        (r, report)
    })
    .await
    .map(|((c, o, e), report)| {
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
        let r = &json["results"][0];
        assert_eq!(r["outcome"], "stored");
        assert_eq!(r["sop_instance_uid"], "1.2.3.4.5.6.7.2");
        assert_eq!(r["sop_class_uid"], "1.2.840.10008.5.1.4.1.1.7");
        assert!(r["note"].as_str().unwrap().contains("file meta disagrees"), "{r}");
        (c, o, e)
    })
    .unwrap();
    assert_eq!(code, 0, "{stdout}{stderr}");
    let stored = scp.stored();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].sop_instance_uid, "1.2.3.4.5.6.7.2");
    assert_eq!(stored[0].sop_class_uid, "1.2.840.10008.5.1.4.1.1.7");
}

#[test]
fn a_data_set_without_sop_uids_is_refused_saying_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = Vec::new();
    el_ex(&mut data, (0x0008, 0x0018), b"UI", b"1.2.3");
    el_ex(&mut data, (0x0010, 0x0020), b"LO", b"PID-1");
    let path = dir.path().join("noclass.dcm");
    std::fs::write(
        &path,
        part10("1.2.840.10008.5.1.4.1.1.7", "1.2.3", uids::EXPLICIT_VR_LE, &data),
    )
    .unwrap();
    let err = InstanceFile::open(&path).unwrap_err();
    assert!(matches!(err, FileError::MissingUid(_)), "{err}");
    assert!(err.to_string().contains("SOP Class UID (0008,0016)"), "{err}");

    let mut data = Vec::new();
    el_ex(&mut data, (0x0008, 0x0016), b"UI", b"1.2.840.10008.5.1.4.1.1.7");
    std::fs::write(
        &path,
        part10("1.2.840.10008.5.1.4.1.1.7", "1.2.3", uids::EXPLICIT_VR_LE, &data),
    )
    .unwrap();
    let err = InstanceFile::open(&path).unwrap_err().to_string();
    assert!(err.contains("SOP Instance UID (0008,0018)"), "{err}");
}

#[test]
fn an_implicit_body_under_an_explicit_syntax_is_refused_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    // (0008,0016) in Implicit VR: tag, 4-byte length, value.
    let mut data = vec![0x08, 0x00, 0x16, 0x00, 26, 0, 0, 0];
    data.extend_from_slice(b"1.2.840.10008.5.1.4.1.1.7\0");
    let path = dir.path().join("wrong.dcm");
    std::fs::write(
        &path,
        part10("1.2.840.10008.5.1.4.1.1.7", "1.2.3", uids::EXPLICIT_VR_LE, &data),
    )
    .unwrap();
    let err = InstanceFile::open(&path).unwrap_err().to_string();
    assert!(err.contains("does not match its transfer syntax"), "{err}");
    assert!(err.contains("(0008,0016)"), "{err}");
}

/// Implicit VR LE to a peer that takes it arrives as Implicit VR, byte for byte;
/// to a peer that takes only Explicit VR it is converted while it streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_arrives_as_implicit_and_converts_both_ways_when_it_must() {
    let work = tempfile::tempdir().unwrap();
    let implicit = work.path().join("implicit.dcm");
    write_in(uids::IMPLICIT_VR_LE, &multiframe(), &implicit);
    let file = InstanceFile::open(&implicit).unwrap();
    assert!(file.data_len() > 2 * 512 * 1024, "larger than a conversion chunk");
    let original = OpenFileOptions::new().open_file(multiframe()).unwrap();

    // Any syntax accepted: sent as it is.
    let out = tempfile::tempdir().unwrap();
    let scp = scp_accepting(None, out.path()).await;
    let rsp = store_one(scp.port(), &file).await;
    assert_eq!(rsp.status, Status::SUCCESS);
    assert!(!rsp.converted);
    assert_eq!(rsp.transfer_syntax, uids::IMPLICIT_VR_LE);
    let got = received(out.path());
    assert_eq!(got.meta().transfer_syntax(), uids::IMPLICIT_VR_LE);
    assert_eq!(data_set_bytes(&files_under(out.path())[0]), data_set_bytes(&implicit));

    // Explicit only: Implicit -> Explicit.
    store_converted(&file, uids::EXPLICIT_VR_LE, &original, "implicit -> explicit").await;
    // Implicit only: Explicit -> Implicit.
    let file = InstanceFile::open(&multiframe()).unwrap();
    store_converted(&file, uids::IMPLICIT_VR_LE, &original, "explicit -> implicit").await;
}

/// Store `file` to an SCP that accepts only `ts`: converted on the way, and what
/// arrives has the same elements as `original`.
async fn store_converted(file: &InstanceFile, ts: &str, original: &InMemDicomObject, what: &str) {
    let out = tempfile::tempdir().unwrap();
    let scp = scp_accepting(Some(&[ts]), out.path()).await;
    let rsp = store_one(scp.port(), file).await;
    assert_eq!(rsp.status, Status::SUCCESS, "{what}");
    assert!(rsp.converted, "{what}");
    let got = received(out.path());
    assert_eq!(got.meta().transfer_syntax(), ts, "{what}");
    assert_same_elements(original, &got, what);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_endian_converts_to_little_endian_element_by_element() {
    let work = tempfile::tempdir().unwrap();
    let be = work.path().join("be.dcm");
    write_in(uids::EXPLICIT_VR_BE, &multiframe(), &be);
    let file = InstanceFile::open(&be).unwrap();
    let out = tempfile::tempdir().unwrap();
    let scp = scp_accepting(Some(&[uids::EXPLICIT_VR_LE, uids::IMPLICIT_VR_LE]), out.path()).await;
    let rsp = store_one(scp.port(), &file).await;
    assert_eq!(rsp.status, Status::SUCCESS);
    assert_eq!(rsp.transfer_syntax, uids::EXPLICIT_VR_LE);
    let got = received(out.path());
    let original = OpenFileOptions::new().open_file(&be).unwrap();
    assert_same_elements(&original, &got, "big -> little endian");
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deflated_is_inflated_while_it_streams_and_a_cut_one_is_refused() {
    let original = OpenFileOptions::new().open_file(multiframe()).unwrap();
    let file = InstanceFile::open(&multiframe()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let dfl = work.path().join("deflated.dcm");
    let packed = deflate(&data_set_bytes(&multiframe()));
    std::fs::write(
        &dfl,
        part10(
            &file.sop_class_uid,
            &file.sop_instance_uid,
            uids::DEFLATED_EXPLICIT_VR_LE,
            &packed,
        ),
    )
    .unwrap();
    let deflated = InstanceFile::open(&dfl).unwrap();
    assert_eq!(
        deflated.sop_instance_uid, file.sop_instance_uid,
        "UIDs read from the inflated data set"
    );

    let out = tempfile::tempdir().unwrap();
    let scp = scp_accepting(Some(&[uids::EXPLICIT_VR_LE]), out.path()).await;
    let rsp = store_one(scp.port(), &deflated).await;
    assert_eq!(rsp.status, Status::SUCCESS);
    assert!(rsp.converted);
    let got = received(out.path());
    assert_same_elements(&original, &got, "deflated -> explicit");
    assert_eq!(
        data_set_bytes(&files_under(out.path())[0]),
        data_set_bytes(&multiframe())
    );

    // Cut short: refused before anything is sent.
    let cut = work.path().join("cut.dcm");
    let mut bytes = std::fs::read(&dfl).unwrap();
    bytes.truncate(bytes.len() - 5000);
    std::fs::write(&cut, bytes).unwrap();
    let err = InstanceFile::open(&cut).unwrap_err();
    assert!(matches!(err, FileError::Truncated(_)), "{err}");
}

/// A relay between our SCU and the embedded SCP that rewrites the SCP's
/// A-ASSOCIATE-AC to announce max PDU length 0 (no limit) and records the length
/// of every PDU the SCU sends.
async fn unlimited_pdu_relay(scp_port: u16) -> (u16, Arc<Mutex<Vec<(u8, u32)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(("127.0.0.1", scp_port)).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let seen = seen2.clone();
            // SCU -> SCP: PDU by PDU, recording sizes.
            tokio::spawn(async move {
                loop {
                    let mut hdr = [0u8; 6];
                    if cr.read_exact(&mut hdr).await.is_err() {
                        return;
                    }
                    let len = u32::from_be_bytes([hdr[2], hdr[3], hdr[4], hdr[5]]);
                    seen.lock().unwrap().push((hdr[0], len));
                    let mut body = vec![0u8; len as usize];
                    if cr.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    if sw.write_all(&hdr).await.is_err() || sw.write_all(&body).await.is_err() {
                        return;
                    }
                }
            });
            // SCP -> SCU: the first PDU (A-ASSOCIATE-AC) patched, then as it comes.
            tokio::spawn(async move {
                let mut hdr = [0u8; 6];
                if sr.read_exact(&mut hdr).await.is_err() {
                    return;
                }
                let len = u32::from_be_bytes([hdr[2], hdr[3], hdr[4], hdr[5]]);
                let mut body = vec![0u8; len as usize];
                if sr.read_exact(&mut body).await.is_err() {
                    return;
                }
                if hdr[0] == 0x02 {
                    // Items after the 68-byte fixed part; user information (50H)
                    // holds the maximum length sub-item (51H).
                    let mut i = 68;
                    while i + 4 <= body.len() {
                        let (ty, l) = (body[i], u16::from_be_bytes([body[i + 2], body[i + 3]]) as usize);
                        if ty == 0x50 {
                            let mut j = i + 4;
                            while j + 4 <= i + 4 + l {
                                let (st, sl) = (body[j], u16::from_be_bytes([body[j + 2], body[j + 3]]) as usize);
                                if st == 0x51 && sl == 4 {
                                    body[j + 4..j + 8].copy_from_slice(&0u32.to_be_bytes());
                                }
                                j += 4 + sl;
                            }
                        }
                        i += 4 + l;
                    }
                }
                if cw.write_all(&hdr).await.is_err() || cw.write_all(&body).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy(&mut sr, &mut cw).await;
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_announcing_no_limit_gets_capped_pdus() {
    let out = tempfile::tempdir().unwrap();
    let scp = scp_accepting(None, out.path()).await;
    let (relay, seen) = unlimited_pdu_relay(scp.port()).await;
    let file = InstanceFile::open(&multiframe()).unwrap();
    let req = ContextRequest::store(&file.sop_class_uid, &file.transfer_syntax);
    let mut assoc = Association::establish(&params(relay), &req.profile).await.unwrap();
    assert_eq!(assoc.peer_announced_max_pdu(), 0);
    assert_eq!(assoc.peer_max_pdu(), pacs_net::association::DEFAULT_MAX_SEND_PDU);
    let rsp = dimse::store(&mut assoc, &file, DimsePriority::Medium).await.unwrap();
    assert_eq!(rsp.status, Status::SUCCESS);
    assoc.release().await;
    let pdata: Vec<u32> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(ty, _)| *ty == 0x04)
        .map(|(_, l)| *l)
        .collect();
    let cap = pacs_net::association::DEFAULT_MAX_SEND_PDU;
    assert!(pdata.iter().all(|l| *l <= cap), "no PDU above the send cap: {pdata:?}");
    // 5 MB of data set in 256 KiB PDUs: about 20 of them, plus the command.
    let expected = file.data_len() / cap as u64;
    assert!(
        pdata.len() as u64 > expected,
        "{} PDUs for {} bytes",
        pdata.len(),
        file.data_len()
    );
    assert!(
        pdata.iter().filter(|l| **l > 16384).count() as u64 >= expected,
        "large PDUs were used, not the 16 KiB default: {pdata:?}"
    );
    assert_eq!(
        data_set_bytes(&files_under(out.path())[0]),
        data_set_bytes(&multiframe())
    );
}

/// pydicom's own sample files (shipped with the package): every one that is not
/// corrupt is stored and arrives byte for byte at a pynetdicom SCP that accepts
/// every transfer syntax; each corrupt one is refused before sending, with a reason.
#[test]
fn pydicom_sample_files_arrive_as_they_are_at_pynetdicom() {
    let Some(py) = python_with_pydicom() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("received");
    let port = free_port();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/store_scp.py");
    let _peer = start_peer(
        py.to_str().unwrap(),
        &[script.to_str().unwrap(), &port.to_string(), out.to_str().unwrap()],
        &[],
        port,
    );
    let (code, output, samples) = store_pydicom_set(&py, &format!("PYSTORE@127.0.0.1:{port}"), dir.path());
    assert!(code == 0 || code == 1, "{output}");
    let received: Vec<Vec<String>> = std::fs::read_to_string(out.join("received.tsv"))
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(String::from).collect())
        .collect();
    let mut next = received.iter();
    let mut stored = 0;
    for SampleResult {
        path,
        name,
        result: r,
        refusal,
    } in &samples
    {
        match refusal {
            None => {
                assert_eq!(r["outcome"], "stored", "{name}: {r}");
                let row = next.next().unwrap_or_else(|| panic!("{name} never arrived"));
                assert_eq!(
                    row[2],
                    r["sop_instance_uid"].as_str().unwrap(),
                    "{name}: the data set's UID"
                );
                let file = InstanceFile::open(path).unwrap();
                assert_eq!(row[3], file.transfer_syntax, "{name}: sent in its own syntax");
                let got = std::fs::read(out.join(format!("{:05}.bin", row[0].parse::<u32>().unwrap()))).unwrap();
                let mut sent = data_set_bytes(path);
                if file.transfer_syntax == uids::DEFLATED_EXPLICIT_VR_LE && sent.len() % 2 == 1 {
                    sent.push(0); // PS3.5 A.5 padding of a deflated stream
                }
                assert!(got == sent, "{name}: the data set arrived unchanged");
                stored += 1;
            }
            Some(reason) => {
                assert_eq!(r["outcome"], "failed", "{name}: {r}");
                assert_eq!(r["attempts"], 0, "{name}: refused before sending");
                let error = r["error"].as_str().unwrap();
                assert!(error.contains(reason), "{name}: {error} (expected: {reason})");
            }
        }
    }
    assert!(next.next().is_none(), "nothing else arrived");
    assert!(stored >= 150, "{stored} files stored");
}

/// One file's result in a `store --report` over pydicom's set, with what it must be.
struct SampleResult {
    path: PathBuf,
    name: String,
    result: serde_json::Value,
    /// Why it must be refused; None: it must be stored.
    refusal: Option<&'static str>,
}

/// `pacs-net store` of pydicom's test_files and charset_files to `target`, one file
/// at a time (so instances arrive in report order), with the expectation for each.
fn store_pydicom_set(py: &Path, target: &str, dir: &Path) -> (i32, String, Vec<SampleResult>) {
    let data = pydicom_data_dir(py);
    let report = dir.join("report.json");
    let (code, stdout, stderr) = pacs_net(&[
        "store",
        target,
        data.join("test_files").to_str().unwrap(),
        data.join("charset_files").to_str().unwrap(),
        "--concurrency",
        "1",
        "--no-progress",
        "--report",
        report.to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let results = json["results"].as_array().unwrap().clone();
    let paths: Vec<&str> = results.iter().map(|r| r["path"].as_str().unwrap()).collect();
    let without_uids = files_without_sop_uids(py, &paths);
    let samples = results
        .iter()
        .map(|r| {
            let path = PathBuf::from(r["path"].as_str().unwrap());
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let is_part10 = std::fs::read(&path)
                .map(|b| b.len() > 132 && &b[128..132] == b"DICM")
                .unwrap_or(false);
            let refusal = expected_refusal(&name, is_part10, without_uids.contains(r["path"].as_str().unwrap()));
            SampleResult {
                path,
                name,
                result: r.clone(),
                refusal,
            }
        })
        .collect();
    (code, format!("{stdout}{stderr}"), samples)
}

/// Why a file of pydicom's set must be refused, or None if it must be stored.
fn expected_refusal(name: &str, is_part10: bool, without_uids: bool) -> Option<&'static str> {
    if !is_part10 {
        return Some("not a DICOM file");
    }
    match name {
        "MR_truncated.dcm" | "rtplan_truncated.dcm" => Some("truncated"),
        "SC_rgb_jpeg.dcm" => Some("does not match its transfer syntax"),
        "meta_missing_tsyntax.dcm" => Some("no Transfer Syntax UID"),
        _ if without_uids => Some("the data set has no SOP"),
        _ => None,
    }
}

/// pydicom as the judge of which data sets do not name their SOP class and instance.
fn files_without_sop_uids(py: &Path, paths: &[&str]) -> std::collections::HashSet<String> {
    let script = r#"
import sys, pydicom
for p in sys.argv[1:]:
    try:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
    except Exception:
        continue
    if 'SOPClassUID' not in ds or 'SOPInstanceUID' not in ds:
        print(p)
"#;
    let out = std::process::Command::new(py)
        .arg("-c")
        .arg(script)
        .args(paths)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

fn python_with_pydicom() -> Option<PathBuf> {
    python_with(&["pynetdicom", "pydicom"])
}

fn pydicom_data_dir(py: &Path) -> PathBuf {
    let out = std::process::Command::new(py)
        .args([
            "-c",
            "import os, pydicom; print(os.path.join(os.path.dirname(pydicom.__file__), 'data'))",
        ])
        .output()
        .unwrap();
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The same set to DCMTK's storescp writing to a folder (it checks that the data set
/// matches the SOP class): every file DCMTK itself can parse is stored, the two
/// all-UN RLE dose files get C000 from it, and each file arrives in its own transfer
/// syntax (an Implicit VR file as Implicit VR).
#[test]
fn pydicom_sample_files_to_dcmtk_storescp() {
    if !peer_available("/usr/bin/storescp") || !peer_available("/usr/bin/dcmdump") {
        return;
    }
    let Some(py) = python_with_pydicom() else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("received");
    std::fs::create_dir_all(&out).unwrap();
    let port = free_port();
    let _peer = start_peer(
        "/usr/bin/storescp",
        &[
            "--aetitle",
            "STORESCP",
            "+xa",
            "+uf",
            "--output-directory",
            out.to_str().unwrap(),
            &port.to_string(),
        ],
        &[],
        port,
    );
    let (code, output, samples) = store_pydicom_set(&py, &format!("STORESCP@127.0.0.1:{port}"), dir.path());
    assert_eq!(code, 1, "the refused files fail the run: {output}");
    let (mut stored, mut implicit_sent, mut rle_dose) = (0, 0, 0);
    for SampleResult {
        path,
        name,
        result: r,
        refusal,
    } in &samples
    {
        match refusal {
            Some(reason) => {
                assert_eq!(r["outcome"], "failed", "{name}: {r}");
                assert!(r["error"].as_str().unwrap().contains(reason), "{name}: {r}");
            }
            None if name.starts_with("rtdose_rle") => {
                assert_eq!(r["outcome"], "failed", "{name}: {r}");
                assert_eq!(r["status"], "C000", "{name}: DCMTK cannot parse it: {r}");
                rle_dose += 1;
            }
            None => {
                assert_eq!(r["outcome"], "stored", "{name}: {r}");
                stored += 1;
                if InstanceFile::open(path).unwrap().transfer_syntax == uids::IMPLICIT_VR_LE {
                    implicit_sent += 1;
                }
            }
        }
    }
    // storescp writes the two it cannot parse too, before answering C000.
    let received = files_under(&out);
    assert_eq!(received.len(), stored + rle_dose, "one file per instance sent");
    let mut implicit_received = 0;
    for f in &received {
        let dump = std::process::Command::new("/usr/bin/dcmdump")
            .args(["+P", "0002,0010"])
            .arg(f)
            .output()
            .unwrap();
        assert!(dump.status.success(), "DCMTK reads {}", f.display());
        if String::from_utf8_lossy(&dump.stdout).contains("=LittleEndianImplicit") {
            implicit_received += 1;
        }
    }
    assert!(implicit_sent >= 5, "{implicit_sent}");
    assert_eq!(
        implicit_received, implicit_sent,
        "Implicit VR files arrive as Implicit VR"
    );
}
