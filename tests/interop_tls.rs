//! DICOM TLS and user identity against real peers: DCMTK (`storescp`/`echoscu`/
//! `storescu` +tls, OpenSSL), pynetdicom (ssl.SSLContext), `openssl s_server`, and
//! our own SCP; certificates are made by the test (a CA, a server certificate for
//! 127.0.0.1 and localhost, a client certificate, an expired and a wrong-name
//! certificate, and a second, untrusted CA). Every failure case must give its own
//! message and exit 1.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A test lab's certificates, written as PEM files in a temp dir.
struct Lab {
    dir: tempfile::TempDir,
}

/// An RSA key (PKCS#8) from the openssl CLI: the BCP 195 profiles DCMTK offers by
/// default are RSA ones, and ring (rcgen's backend) cannot generate RSA keys.
fn rsa_key(dir: &Path, name: &str) -> KeyPair {
    let path = dir.join(name);
    let out = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&path)
        .output()
        .expect("run openssl genpkey");
    assert!(
        out.status.success(),
        "openssl genpkey: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read_to_string(&path).unwrap();
    KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap()
}

fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

fn leaf_params(cn: &str, dns: &[&str], ips: &[&str], server: bool) -> CertificateParams {
    let mut p = CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    for ip in ips {
        p.subject_alt_names.push(SanType::IpAddress(ip.parse().unwrap()));
    }
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    p
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let write = |name: &str, text: &str| std::fs::write(d.join(name), text).unwrap();

        let ca_key = rsa_key(d, "ca.key");
        let ca = ca_params("pacs-net test CA");
        write("ca.pem", &ca.self_signed(&ca_key).unwrap().pem());
        let issuer = Issuer::new(ca, ca_key);

        let leaf_key = rsa_key(d, "leaf.key");
        let server = leaf_params("localhost", &["localhost"], &["127.0.0.1"], true);
        write("server.pem", &server.signed_by(&leaf_key, &issuer).unwrap().pem());
        let client = leaf_params("PACSNET client", &[], &[], false);
        write("client.pem", &client.signed_by(&leaf_key, &issuer).unwrap().pem());
        let mut expired = leaf_params("localhost", &["localhost"], &["127.0.0.1"], true);
        expired.not_before = date_time_ymd(2020, 1, 1);
        expired.not_after = date_time_ymd(2021, 1, 1);
        write("expired.pem", &expired.signed_by(&leaf_key, &issuer).unwrap().pem());
        let wrong_name = leaf_params("pacs.other.example", &["pacs.other.example"], &["10.9.8.7"], true);
        write(
            "wrongname.pem",
            &wrong_name.signed_by(&leaf_key, &issuer).unwrap().pem(),
        );

        let rogue_key = rsa_key(d, "rogue-ca.key");
        let rogue = ca_params("some other CA");
        write("rogue-ca.pem", &rogue.self_signed(&rogue_key).unwrap().pem());
        let rogue_issuer = Issuer::new(rogue, rogue_key);
        write(
            "rogue-server.pem",
            &server.signed_by(&leaf_key, &rogue_issuer).unwrap().pem(),
        );
        Lab { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }
}

fn openssl_available() -> bool {
    peer_available("/usr/bin/openssl")
}

/// `pacs-net scp` serving TLS with `cert` (key: leaf.key), optionally requiring a
/// client certificate signed by `client_ca`.
fn start_tls_scp(lab: &Lab, cert: &str, client_ca: Option<&str>, storage: Option<&Path>) -> (Peer, u16) {
    let port = free_port();
    let port_s = port.to_string();
    let cert = lab.path(cert);
    let key = lab.path("leaf.key");
    let mut args = vec![
        "scp",
        "--port",
        &port_s,
        "--ae-title",
        "OURSCP",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ];
    let ca;
    if let Some(c) = client_ca {
        ca = lab.path(c);
        args.extend(["--tls-ca", &ca]);
    }
    if let Some(dir) = storage.and_then(|d| d.to_str()) {
        args.extend(["--storage", dir]);
    }
    let peer = start_peer(env!("CARGO_BIN_EXE_pacs-net"), &args, &[], port);
    (peer, port)
}

fn assert_failed(args: &[&str], expect: &[&str]) -> String {
    let (code, stdout, stderr) = pacs_net(args);
    assert_eq!(code, 1, "exit code for {args:?}\nstdout: {stdout}\nstderr: {stderr}");
    for e in expect {
        assert!(stderr.contains(e), "{args:?}: expected {e:?} in stderr:\n{stderr}");
    }
    stderr
}

#[test]
fn echo_and_store_over_tls_to_our_scp_through_one_pooled_association() {
    if !openssl_available() {
        return;
    }
    let lab = Lab::new();
    let storage = tempfile::tempdir().unwrap();
    let (_scp, port) = start_tls_scp(&lab, "server.pem", None, Some(storage.path()));
    let target = format!("OURSCP@127.0.0.1:{port}");
    let ca = lab.path("ca.pem");
    let (code, stdout, stderr) = pacs_net(&[
        "echo",
        &target,
        "--count",
        "20",
        "--tls-ca",
        &ca,
        "--stats",
        "--stats-format",
        "json",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let stats: serde_json::Value = serde_json::from_str(&stderr[stderr.find('[').expect("--stats json")..]).unwrap();
    assert_eq!(
        stats[0]["pool"]["created"], 1,
        "20 echoes over one TLS association: {stats}"
    );

    // The DNS name in the certificate works as well as the IP address.
    let (code, stdout, stderr) = pacs_net(&["echo", &format!("OURSCP@localhost:{port}"), "--tls-ca", &ca]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    let (code, stdout, stderr) = pacs_net(&[
        "store",
        &target,
        fixtures().join("dicom").to_str().unwrap(),
        "--tls-ca",
        &ca,
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let expected = dicom_fixture_files().len();
    assert!(
        stdout.contains(&format!("{expected} files: {expected} stored")),
        "{stdout}"
    );
    let written = files_under(storage.path())
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .count();
    assert_eq!(written, expected, "instances the TLS SCP wrote");
}

#[test]
fn each_tls_failure_has_its_own_message_and_exit_1() {
    if !openssl_available() {
        return;
    }
    let lab = Lab::new();
    let ca = lab.path("ca.pem");
    let (_good, good_port) = start_tls_scp(&lab, "server.pem", None, None);
    let good = format!("OURSCP@127.0.0.1:{good_port}");

    // Unknown CA: we trust a CA that did not sign the server's certificate.
    assert_failed(&["echo", &good, "--tls-ca", &lab.path("rogue-ca.pem")], &["unknown CA"]);
    // ... and the system roots do not know our lab CA either.
    assert_failed(&["echo", &good, "--tls"], &["unknown CA", "system's trust roots"]);

    // Name mismatch: expected vs presented.
    assert_failed(
        &["echo", &good, "--tls-ca", &ca, "--tls-server-name", "pacs.example.org"],
        &["name mismatch", "pacs.example.org", "127.0.0.1"],
    );
    let (_wrong, wrong_port) = start_tls_scp(&lab, "wrongname.pem", None, None);
    assert_failed(
        &["echo", &format!("OURSCP@127.0.0.1:{wrong_port}"), "--tls-ca", &ca],
        &["name mismatch", "IP address 127.0.0.1", "pacs.other.example"],
    );

    // Expired.
    let (_expired, expired_port) = start_tls_scp(&lab, "expired.pem", None, None);
    assert_failed(
        &["echo", &format!("OURSCP@127.0.0.1:{expired_port}"), "--tls-ca", &ca],
        &["expired", "2021-01-01"],
    );

    // A TLS client to a plain DICOM port.
    let (_plain, plain_port) = start_our_scp(None);
    assert_failed(
        &[
            "echo",
            &format!("OURSCP@127.0.0.1:{plain_port}"),
            "--tls-ca",
            &ca,
            "--attempts",
            "1",
        ],
        &["TLS", "plain"],
    );

    // A plain client to a TLS port.
    assert_failed(&["echo", &good, "--attempts", "1"], &["expects DICOM TLS"]);

    // Mutual TLS required, and no client certificate given.
    let (_mtls, mtls_port) = start_tls_scp(&lab, "server.pem", Some("ca.pem"), None);
    assert_failed(
        &[
            "echo",
            &format!("OURSCP@127.0.0.1:{mtls_port}"),
            "--tls-ca",
            &ca,
            "--attempts",
            "1",
        ],
        &["client certificate"],
    );
}

#[test]
fn tls_protocol_version_refused_by_a_tls12_only_server() {
    if !openssl_available() {
        return;
    }
    let lab = Lab::new();
    let port = free_port();
    // openssl s_server speaking TLS 1.2 only, against a node that asks for 1.3.
    let _server = start_peer(
        "/usr/bin/openssl",
        &[
            "s_server",
            "-quiet",
            "-accept",
            &port.to_string(),
            "-cert",
            &lab.path("server.pem"),
            "-key",
            &lab.path("leaf.key"),
            "-tls1_2",
        ],
        &[],
        port,
    );
    let config = lab.dir.path().join("tls13.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"nodes": {{"TLS13": {{"ae_title": "ANY", "host": "127.0.0.1", "port": {port},
                "retry": {{"max_attempts": 1}},
                "tls": {{"enabled": true, "ca_file": "ca.pem", "min_version": "1.3"}}}}}}}}"#
        ),
    )
    .unwrap();
    assert_failed(
        &["-c", config.to_str().unwrap(), "echo", "TLS13"],
        &["protocol version"],
    );
}

#[test]
fn mutual_tls_with_our_scp() {
    if !openssl_available() {
        return;
    }
    let lab = Lab::new();
    let (_scp, port) = start_tls_scp(&lab, "server.pem", Some("ca.pem"), None);
    let (code, stdout, stderr) = pacs_net(&[
        "echo",
        &format!("OURSCP@127.0.0.1:{port}"),
        "--tls-ca",
        &lab.path("ca.pem"),
        "--tls-cert",
        &lab.path("client.pem"),
        "--tls-key",
        &lab.path("leaf.key"),
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
}

#[test]
fn config_node_with_tls_paths_relative_to_the_config() {
    if !openssl_available() {
        return;
    }
    let lab = Lab::new();
    let (_scp, port) = start_tls_scp(&lab, "server.pem", Some("ca.pem"), None);
    let config = lab.dir.path().join("hospital.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"nodes": {{"SECURE": {{"ae_title": "OURSCP", "host": "localhost", "port": {port},
                "tls": {{"enabled": true, "ca_file": "ca.pem", "cert_file": "client.pem", "key_file": "leaf.key"}}}}}}}}"#
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let (code, stdout, stderr) = pacs_net(&["config", "check", cfg]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("server_name") && stdout.contains("localhost"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&lab.path("ca.pem")),
        "ca_file resolved against the config's folder: {stdout}"
    );
    let (code, stdout, stderr) = pacs_net(&["-c", cfg, "echo", "SECURE", "--count", "3"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    // verify_peer false: written out, warned about at every start.
    std::fs::write(
        &config,
        format!(
            r#"{{"nodes": {{"LAX": {{"ae_title": "OURSCP", "host": "127.0.0.1", "port": {port},
                "tls": {{"enabled": true, "verify_peer": false, "ca_file": "rogue-ca.pem",
                         "cert_file": "client.pem", "key_file": "leaf.key"}}}}}}}}"#
        ),
    )
    .unwrap();
    let (code, stdout, stderr) = pacs_net(&["-c", cfg, "echo", "LAX"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stderr.contains("verify_peer is false"), "{stderr}");
}

// ---- DCMTK ----

fn dcmtk_tls_storescp(lab: &Lab, out: &Path, port: u16, require_client_cert: bool) -> Peer {
    let key = lab.path("leaf.key");
    let cert = lab.path("server.pem");
    let ca = lab.path("ca.pem");
    let port_s = port.to_string();
    let mut args = vec![
        "--aetitle",
        "STORESCP",
        "+xa",
        "+tls",
        &key,
        &cert,
        "-pw",
        "+cf",
        &ca,
        "--output-directory",
        out.to_str().unwrap(),
    ];
    args.push(if require_client_cert { "-rc" } else { "-ic" });
    args.push(&port_s);
    start_peer("/usr/bin/storescp", &args, &[], port)
}

fn dcmdump_count(dir: &Path) -> usize {
    let files = files_under(dir);
    for f in &files {
        let out = Command::new("/usr/bin/dcmdump")
            .arg("+P")
            .arg("0008,0018")
            .arg(f)
            .output()
            .unwrap();
        assert!(out.status.success(), "dcmdump {}", f.display());
    }
    files.len()
}

#[test]
fn store_to_dcmtk_storescp_over_tls_and_mutual_tls() {
    if !openssl_available() || !peer_available("/usr/bin/storescp") || !peer_available("/usr/bin/dcmdump") {
        return;
    }
    let lab = Lab::new();
    let ca = lab.path("ca.pem");
    for mutual in [false, true] {
        let out = tempfile::tempdir().unwrap();
        let port = free_port();
        let _peer = dcmtk_tls_storescp(&lab, out.path(), port, mutual);
        let target = format!("STORESCP@127.0.0.1:{port}");
        let fixtures = fixtures().join("dicom");
        let mut args = vec!["store", &target, fixtures.to_str().unwrap(), "--tls-ca", &ca];
        let (cert, key) = (lab.path("client.pem"), lab.path("leaf.key"));
        if mutual {
            args.extend(["--tls-cert", &cert, "--tls-key", &key]);
        }
        let (code, stdout, stderr) = pacs_net(&args);
        assert_eq!(code, 0, "mutual={mutual}\n{stdout}\n{stderr}");
        let sent = files_under(&fixtures)
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
            .count();
        assert!(sent > 0);
        assert_eq!(dcmdump_count(out.path()), sent, "files DCMTK wrote (mutual={mutual})");
    }
}

#[test]
fn dcmtk_echoscu_and_storescu_over_mutual_tls_to_our_scp() {
    if !openssl_available() || !peer_available("/usr/bin/echoscu") || !peer_available("/usr/bin/storescu") {
        return;
    }
    let lab = Lab::new();
    let storage = tempfile::tempdir().unwrap();
    let (_scp, port) = start_tls_scp(&lab, "server.pem", Some("ca.pem"), Some(storage.path()));
    let port_s = port.to_string();
    let tls = [
        "+tls",
        &lab.path("leaf.key"),
        &lab.path("client.pem"),
        "-pw",
        "+cf",
        &lab.path("ca.pem"),
    ];
    let out = Command::new("/usr/bin/echoscu")
        .args(tls)
        .args(["-aec", "OURSCP", "127.0.0.1", &port_s])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "echoscu +tls: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let file = dicom_fixture_files().into_iter().next().unwrap();
    let out = Command::new("/usr/bin/storescu")
        .args(tls)
        .args(["-aec", "OURSCP", "127.0.0.1", &port_s])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "storescu +tls: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = files_under(storage.path())
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .count();
    assert_eq!(written, 1);

    // Without a client certificate, our SCP refuses: DCMTK's echoscu fails.
    let out = Command::new("/usr/bin/echoscu")
        .args([
            "+tla",
            "+cf",
            &lab.path("ca.pem"),
            "-aec",
            "OURSCP",
            "127.0.0.1",
            &port_s,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "echoscu without a client certificate must fail");
}

// ---- pynetdicom ----

fn python() -> Option<PathBuf> {
    python_with(&["pynetdicom"])
}

fn tls_peer() -> String {
    fixtures()
        .parent()
        .unwrap()
        .join("tests/peers/tls_peer.py")
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn pynetdicom_both_ways_over_mutual_tls() {
    if !openssl_available() {
        return;
    }
    let Some(py) = python() else { return };
    let lab = Lab::new();
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let port_s = port.to_string();
    let (cert, key, ca) = (lab.path("server.pem"), lab.path("leaf.key"), lab.path("ca.pem"));
    let _peer = start_peer(
        py.to_str().unwrap(),
        &[
            &tls_peer(),
            "scp",
            &port_s,
            out.path().to_str().unwrap(),
            "--cert",
            &cert,
            "--key",
            &key,
            "--ca",
            &ca,
        ],
        &[],
        port,
    );
    let target = format!("PYTLS@127.0.0.1:{port}");
    let client = lab.path("client.pem");
    let file = dicom_fixture_files().into_iter().next().unwrap();
    let (code, stdout, stderr) = pacs_net(&[
        "store",
        &target,
        file.to_str().unwrap(),
        "--tls-ca",
        &ca,
        "--tls-cert",
        &client,
        "--tls-key",
        &key,
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let received = std::fs::read_to_string(out.path().join("received.tsv")).unwrap();
    assert_eq!(received.lines().count(), 1, "{received}");

    // pynetdicom's SCU to our SCP, mutual TLS.
    let (_scp, scp_port) = start_tls_scp(&lab, "server.pem", Some("ca.pem"), None);
    let status = Command::new(&py)
        .args([
            &tls_peer(),
            "echo",
            "127.0.0.1",
            &scp_port.to_string(),
            "OURSCP",
            "--ca",
            &ca,
        ])
        .args(["--cert", &client, "--key", &key])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
}

#[test]
fn user_identity_accepted_and_rejected_by_pynetdicom_and_never_shown() {
    let Some(py) = python() else { return };
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let secret = "S3cr3t-Passc0de-9f2e";
    let _peer = start_peer(
        py.to_str().unwrap(),
        &[
            &tls_peer(),
            "scp",
            &port.to_string(),
            out.path().to_str().unwrap(),
            "--user",
            "alice",
            "--password",
            secret,
        ],
        &[],
        port,
    );
    let target = format!("PYTLS@127.0.0.1:{port}");
    let metrics = out.path().join("metrics.prom");
    let metrics_s = metrics.to_str().unwrap().to_string();
    // Everything a user sees: stdout, stderr (logs at -vv, errors, --stats) and --metrics.
    let run = |user: &str, password: &str, extra: &[&str]| {
        let mut args = vec![
            "echo",
            &target,
            "--user",
            user,
            "--password-env",
            "PACS_NET_TEST_PW",
            "--stats",
            "--metrics",
            &metrics_s,
        ];
        args.extend(extra);
        let out = Command::new(env!("CARGO_BIN_EXE_pacs-net"))
            .args(&args)
            .env_remove("PACS_NET_CONFIG")
            .env("PACS_NET_TEST_PW", password)
            .output()
            .unwrap();
        let metrics = std::fs::read_to_string(&metrics).unwrap_or_default();
        assert!(metrics.contains("pacs_net"), "metrics written: {metrics}");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr) + &metrics,
        )
    };
    let (code, text) = run("alice", secret, &["-vv"]);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains(secret), "the passcode appeared in the output:\n{text}");

    let wrong = "Wr0ng-Passc0de-77aa";
    let (code, text) = run("alice", wrong, &["-vv", "--attempts", "3"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("identity"),
        "the rejection names identity as a possible reason: {text}"
    );
    assert!(text.contains("permanent"), "{text}");
    assert!(
        !text.contains(wrong) && !text.contains(secret),
        "a passcode appeared in the output:\n{text}"
    );

    // A config naming the variable: `config check` shows where the secret comes from, not it.
    let config = out.path().join("identity.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"nodes": {{"PY": {{"ae_title": "PYTLS", "host": "127.0.0.1", "port": {port},
                "user_identity": {{"type": "username_password", "username": "alice",
                                   "password_env": "PACS_NET_TEST_PW"}}}}}}}}"#
        ),
    )
    .unwrap();
    let checked = Command::new(env!("CARGO_BIN_EXE_pacs-net"))
        .args(["config", "check", config.to_str().unwrap()])
        .env("PACS_NET_TEST_PW", secret)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&checked.stdout).into_owned() + &String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "{text}");
    assert!(text.contains("environment variable PACS_NET_TEST_PW"), "{text}");
    assert!(!text.contains(secret), "config check showed the secret:\n{text}");

    let log = std::fs::read_to_string(out.path().join("identity.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    // One accepted identity, then one refused: a rejection for identity is not retried.
    assert_eq!(lines, vec!["2\talice\tok", "2\talice\trefused"], "{log}");
}

#[test]
fn jwt_identity_with_positive_response_from_pynetdicom() {
    let Some(py) = python() else { return };
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ.";
    let _peer = start_peer(
        py.to_str().unwrap(),
        &[
            &tls_peer(),
            "scp",
            &port.to_string(),
            out.path().to_str().unwrap(),
            "--user",
            token,
            "--respond-identity",
        ],
        &[],
        port,
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token.jwt"), format!("{token}\n")).unwrap();
    let config = dir.path().join("c.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"nodes": {{"JWT": {{"ae_title": "PYTLS", "host": "127.0.0.1", "port": {port},
                "user_identity": {{"type": "jwt", "token_file": "token.jwt", "positive_response_requested": true}}}}}}}}"#
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let (code, stdout, stderr) = pacs_net(&["config", "check", cfg]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("token.jwt") && !stdout.contains(token), "{stdout}");
    let (code, stdout, stderr) = pacs_net(&["-c", cfg, "echo", "JWT", "-vv"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(!stderr.contains(token) && !stdout.contains(token), "{stderr}");
    let log = std::fs::read_to_string(out.path().join("identity.log")).unwrap();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        vec![format!("5\t{token}\tok")],
        "{log}"
    );
}

// ---- Orthanc ----

#[test]
fn echo_and_store_to_orthanc_over_mutual_tls() {
    if !openssl_available() || !peer_available("/usr/sbin/Orthanc") {
        return;
    }
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dicom_port = free_port();
    let http_port = free_port();
    let config = serde_json::json!({
        "Name": "pacs-net-tls-test",
        "StorageDirectory": d.join("storage"),
        "IndexDirectory": d.join("index"),
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "HttpServerEnabled": true,
        "RemoteAccessAllowed": false,
        "AuthenticationEnabled": false,
        "DicomAlwaysAllowEcho": true,
        "DicomAlwaysAllowStore": true,
        "UnknownSopClassAccepted": true,
        "Plugins": [],
        "DicomTlsEnabled": true,
        "DicomTlsCertificate": lab.path("server.pem"),
        "DicomTlsPrivateKey": lab.path("leaf.key"),
        "DicomTlsTrustedCertificates": lab.path("ca.pem"),
        "DicomTlsRemoteCertificateRequired": true
    });
    let path = d.join("orthanc.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let _orthanc = start_peer("/usr/sbin/Orthanc", &[path.to_str().unwrap()], &[], dicom_port);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", http_port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let target = format!("ORTHANC@127.0.0.1:{dicom_port}");
    let (ca, cert, key) = (lab.path("ca.pem"), lab.path("client.pem"), lab.path("leaf.key"));
    let tls = ["--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &key];
    let mut echo = vec!["echo", &target, "--count", "3"];
    echo.extend(tls);
    let (code, stdout, stderr) = pacs_net(&echo);
    assert_eq!(code, 0, "{stdout}\n{stderr}");

    let file = dicom_fixture_files().into_iter().next().unwrap();
    let mut store = vec!["store", &target, file.to_str().unwrap()];
    store.extend(tls);
    let (code, stdout, stderr) = pacs_net(&store);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let instances: serde_json::Value = serde_json::from_str(&http_get(http_port, "/instances")).unwrap();
    assert_eq!(instances.as_array().unwrap().len(), 1, "Orthanc holds {instances}");

    // Orthanc requires a client certificate: without one, a clear error and exit 1.
    assert_failed(
        &["echo", &target, "--tls-ca", &ca, "--attempts", "1"],
        &["client certificate"],
    );
}

#[test]
fn tls_and_plain_mixed_up_against_dcmtk_say_so() {
    if !openssl_available() || !peer_available("/usr/bin/storescp") {
        return;
    }
    let lab = Lab::new();
    let out = tempfile::tempdir().unwrap();
    let tls_port = free_port();
    let _tls = dcmtk_tls_storescp(&lab, out.path(), tls_port, false);
    let plain_port = free_port();
    let _plain = start_peer(
        "/usr/bin/storescp",
        &["--ignore", &plain_port.to_string()],
        &[],
        plain_port,
    );
    // A TLS client to DCMTK's plain port: DCMTK resets the connection.
    assert_failed(
        &[
            "echo",
            &format!("STORESCP@127.0.0.1:{plain_port}"),
            "--tls-ca",
            &lab.path("ca.pem"),
            "--attempts",
            "1",
        ],
        &["during the TLS handshake", "plain DICOM port"],
    );
    // A plain client to DCMTK's TLS port.
    assert_failed(
        &["echo", &format!("STORESCP@127.0.0.1:{tls_port}"), "--attempts", "1"],
        &["expects DICOM TLS"],
    );
}
