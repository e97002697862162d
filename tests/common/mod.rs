//! Test support: free loopback ports, peer programs (DCMTK, Orthanc) started and
//! stopped by PID, bounded waits, and the fixtures.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// How many instances fixtures/dicom holds (made by `cargo run --example
/// generate_fixtures`): a loop over them checks something only if they are there.
pub const DICOM_FIXTURES: usize = 13;

/// The bundled DICOM fixtures, sorted; panics unless all [`DICOM_FIXTURES`] are there.
pub fn dicom_fixture_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(fixtures().join("dicom"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "dcm"))
        .map(|e| e.into_path())
        .collect();
    v.sort();
    assert_eq!(v.len(), DICOM_FIXTURES, "fixtures/dicom: {v:?}");
    v
}

/// The SOP Instance UIDs of the bundled fixtures, sorted: what a peer that
/// received them all must hold.
pub fn dicom_fixture_uids() -> Vec<String> {
    let mut uids: Vec<String> = dicom_fixture_files()
        .iter()
        .map(|p| {
            pacs_net::dimse::InstanceFile::open(p)
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
                .sop_instance_uid
        })
        .collect();
    uids.sort();
    uids
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Whether a peer program is installed; when it is not, the test is skipped (with a
/// visible `SKIPPED` line) unless PACS_NET_REQUIRE_PEERS=1, which makes it fail.
pub fn peer_available(program: &str) -> bool {
    if Path::new(program).exists() {
        return true;
    }
    skip(&format!("{program} is not installed"));
    false
}

/// A peer is missing: panics under PACS_NET_REQUIRE_PEERS=1 (CI), else prints
/// `SKIPPED <test>: <reason>` where `cargo test` shows it. The test harness
/// captures `print!`/`eprint!` of a passing test, and a passing test cannot say it
/// was skipped; a write to the stderr handle itself is not captured.
pub fn skip(reason: &str) {
    if std::env::var("PACS_NET_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{reason} and PACS_NET_REQUIRE_PEERS=1");
    }
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: {reason} (set PACS_NET_REQUIRE_PEERS=1 to fail instead)"
    );
}

/// A child process killed (by its own PID) when dropped.
pub struct Peer {
    pub child: Child,
    pub name: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `program args` with `env`, and wait (bounded) until `port` accepts.
pub fn start_peer(program: &str, args: &[&str], env: &[(&str, &str)], port: u16) -> Peer {
    spawn_peer(program, args, env, port, Stdio::null(), Stdio::null())
}

/// [`start_peer`], with the peer's stdout and stderr both appended to `log` (to
/// check what the peer itself saw).
pub fn start_peer_logged(program: &str, args: &[&str], env: &[(&str, &str)], port: u16, log: &Path) -> Peer {
    let file = std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let err = file.try_clone().expect("clone the log file handle");
    spawn_peer(program, args, env, port, Stdio::from(file), Stdio::from(err))
}

fn spawn_peer(program: &str, args: &[&str], env: &[(&str, &str)], port: u16, stdout: Stdio, stderr: Stdio) -> Peer {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let mut peer = Peer {
        child,
        name: program.to_string(),
    };
    wait_for_port(port, Duration::from_secs(20), &mut peer);
    peer
}

fn wait_for_port(port: u16, limit: Duration, peer: &mut Peer) {
    let start = Instant::now();
    for _ in 0..400 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = peer.child.try_wait() {
            panic!("{} exited early: {status}", peer.name);
        }
        if start.elapsed() > limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} did not listen on port {port} within {limit:?}", peer.name);
}

/// Run the pacs-net binary; returns (exit code, stdout, stderr).
pub fn pacs_net(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pacs-net"))
        .args(args)
        .env_remove("PACS_NET_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run pacs-net");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Files (recursively) under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

/// A plain HTTP/1.0 GET on loopback (for Orthanc's REST API), body as text.
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to HTTP port");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    resp.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// Start `pacs-net scp` as AE title OURSCP on a free port, storing under `storage`
/// (or in memory).
pub fn start_our_scp(storage: Option<&Path>) -> (Peer, u16) {
    let port = free_port();
    let port_s = port.to_string();
    let mut args = vec!["scp", "--port", &port_s, "--ae-title", "OURSCP"];
    if let Some(dir) = storage.and_then(|d| d.to_str()) {
        args.extend(["--storage", dir]);
    }
    let peer = start_peer(env!("CARGO_BIN_EXE_pacs-net"), &args, &[], port);
    (peer, port)
}

/// A python that can import `modules`: `PACS_NET_PYTHON`, else the venv CI makes
/// under target/pyenv. None (and a visible `SKIPPED` line, see [`skip`]) when there is none, unless
/// `PACS_NET_REQUIRE_PEERS=1`, which makes that a failure.
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("PACS_NET_PYTHON").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/pyenv/bin/python")),
    ];
    let import = format!("import {}", modules.join(", "));
    for p in candidates.into_iter().flatten() {
        let ok = std::process::Command::new(&p)
            .args(["-c", &import])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(p);
        }
    }
    skip(&format!(
        "{} not installed (target/pyenv or PACS_NET_PYTHON)",
        modules.join(", ")
    ));
    None
}

/// Waits for `cond` to hold, checking every 10 ms for at most 10 s (a bound far
/// above what any state here takes, so a loaded machine does not fail the test);
/// whether it held. The caller asserts the state itself, with its own message.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..1000 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// Start Orthanc with its own config in `dir`, on free loopback ports, with
/// `extra` merged into its config (e.g. `DicomModalities`); (peer, DICOM port, HTTP port).
pub fn start_orthanc(dir: &std::path::Path, extra: serde_json::Value) -> (Peer, u16, u16) {
    let dicom_port = free_port();
    let http_port = free_port();
    let mut config = serde_json::json!({
        "Name": "pacs-net-test",
        "StorageDirectory": dir.join("storage"),
        "IndexDirectory": dir.join("index"),
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "HttpServerEnabled": true,
        "RemoteAccessAllowed": false,
        "AuthenticationEnabled": false,
        "DicomCheckCalledAet": true,
        "DicomAlwaysAllowEcho": true,
        "DicomAlwaysAllowStore": true,
        "DicomAlwaysAllowFind": true,
        "UnknownSopClassAccepted": true,
        "Plugins": [],
        "StableAge": 1
    });
    if let (Some(base), Some(more)) = (config.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            base.insert(k.clone(), v.clone());
        }
    }
    let path = dir.join("orthanc.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let peer = start_peer("/usr/sbin/Orthanc", &[path.to_str().unwrap()], &[], dicom_port);
    // The HTTP server may come up a moment after the DICOM port.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", http_port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (peer, dicom_port, http_port)
}
