//! Fleet-wide limits over a real `redis-server` (feature `redis`): several
//! `pacs-net` processes against one embedded SCP that rejects associations
//! beyond its limit, a process killed outright, Redis stopped mid-run, the
//! shared breaker, and the config's checks.
#![cfg(feature = "redis")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, peer_available, start_peer, Peer};
use pacs_net::config::Config;
use pacs_net::scp::{Behavior, Scp, ScpConfig};

const REDIS: &str = "/usr/bin/redis-server";

/// A redis-server of our own: free loopback port, own temp dir, no persistence;
/// stopped by its PID when dropped.
struct Redis {
    _peer: Peer,
    port: u16,
    _dir: tempfile::TempDir,
}

fn start_redis_on(port: u16) -> Redis {
    let dir = tempfile::tempdir().unwrap();
    let port_s = port.to_string();
    let dir_s = dir.path().to_str().unwrap().to_string();
    let peer = start_peer(
        REDIS,
        &[
            "--port",
            &port_s,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir_s,
        ],
        &[],
        port,
    );
    Redis {
        _peer: peer,
        port,
        _dir: dir,
    }
}

fn start_redis() -> Option<Redis> {
    if !peer_available(REDIS) {
        return None;
    }
    Some(start_redis_on(free_port()))
}

/// Unexpired leases of the SCP's node, by Redis's clock.
fn live_leases(redis_port: u16, scp_port: u16) -> usize {
    let client = redis::Client::open(format!("redis://127.0.0.1:{redis_port}/0")).unwrap();
    let mut conn = client.get_connection().unwrap();
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut conn).unwrap();
    let now_ms = secs * 1000 + micros / 1000;
    redis::cmd("ZCOUNT")
        .arg(format!("pacs-net:{{PACSNET_SCP@127.0.0.1:{scp_port}}}:leases"))
        .arg(now_ms + 1)
        .arg("+inf")
        .query(&mut conn)
        .unwrap()
}

async fn scp_on(port: u16, behavior: Behavior) -> Scp {
    let config = ScpConfig {
        behavior,
        ..ScpConfig::default()
    };
    Scp::start(config, format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap()
}

/// `shared`: the `shared_limits` section (None: none); `node_extra`: fields of the node.
fn write_config(
    dir: &Path,
    scp_port: u16,
    shared: Option<serde_json::Value>,
    node_extra: serde_json::Value,
) -> PathBuf {
    let mut node = serde_json::json!({
        "ae_title": "PACSNET_SCP", "host": "127.0.0.1", "port": scp_port,
        "retry": {"max_attempts": 3, "initial_delay_ms": 50, "max_delay_ms": 200},
    });
    for (k, v) in node_extra.as_object().unwrap() {
        node[k] = v.clone();
    }
    let mut config = serde_json::json!({"nodes": {"PACS": node}});
    if let Some(s) = shared {
        config["shared_limits"] = s;
    }
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    path
}

fn pacs_net_cmd(config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pacs-net"));
    cmd.arg("-c").arg(config).args(args);
    cmd.env_remove("PACS_NET_CONFIG").stdin(Stdio::null());
    cmd
}

/// Runs the commands at once; (exit code, stderr) of each.
async fn run_all(cmds: Vec<Command>) -> Vec<(i32, String)> {
    let mut handles = Vec::new();
    for mut cmd in cmds {
        handles.push(tokio::task::spawn_blocking(move || {
            let out = cmd.output().unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }));
    }
    let mut results = Vec::new();
    for h in handles {
        results.push(h.await.unwrap());
    }
    results
}

/// A directory of `copies` × the fixtures (13 files each).
fn input_files(dir: &Path, copies: usize) -> PathBuf {
    let input = dir.join("in");
    for c in 0..copies {
        let d = input.join(c.to_string());
        std::fs::create_dir_all(&d).unwrap();
        // Fixtures in different folders share names: numbered, all 13 are kept.
        for (i, f) in common::dicom_fixture_files().iter().enumerate() {
            std::fs::copy(f, d.join(format!("{i}.dcm"))).unwrap();
        }
    }
    input
}

fn limited_scp() -> Behavior {
    Behavior {
        // Rejects a 7th concurrent association ("local limit exceeded").
        max_associations: Some(6),
        // Each association stays busy long enough for the processes to overlap.
        response_delay: Some(Duration::from_millis(40)),
        ..Behavior::default()
    }
}

/// The SCP, (exit code, stderr) of each process, and the Prometheus text the first wrote.
async fn four_stores(
    shared: Option<serde_json::Value>,
    node_extra: serde_json::Value,
) -> (Scp, Vec<(i32, String)>, String) {
    let dir = tempfile::tempdir().unwrap();
    let scp = scp_on(free_port(), limited_scp()).await;
    let config = write_config(dir.path(), scp.port(), shared, node_extra);
    let input = input_files(dir.path(), 2);
    let metrics = dir.path().join("metrics.txt");
    let cmds = (0..4)
        .map(|i| {
            let mut cmd = pacs_net_cmd(
                &config,
                &[
                    "store",
                    "PACS",
                    input.to_str().unwrap(),
                    "--concurrency",
                    "8",
                    "--no-progress",
                ],
            );
            if i == 0 {
                cmd.arg("--stats").arg("--metrics").arg(&metrics);
            }
            cmd
        })
        .collect();
    let results = run_all(cmds).await;
    (scp, results, std::fs::read_to_string(&metrics).unwrap_or_default())
}

/// The value of a Prometheus sample whose line starts with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_stay_under_the_fleet_cap_and_store_everything() {
    let Some(redis) = start_redis() else { return };
    let shared = serde_json::json!({"redis_url": format!("redis://127.0.0.1:{}/0", redis.port), "lease_seconds": 5});
    let (scp, results, metrics) = four_stores(Some(shared), serde_json::json!({"max_shared_associations": 6})).await;
    for (code, stderr) in &results {
        assert_eq!(*code, 0, "every file stored: {stderr}");
    }
    // --stats (stderr) and --metrics show the shared figures.
    assert!(
        results[0].1.contains("shared: leases held / fleet seen / cap"),
        "{}",
        results[0].1
    );
    assert!(
        sample(&metrics, "pacs_net_shared_leases_acquired_total{").unwrap_or(0.0) >= 1.0,
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "pacs_net_shared_max_associations{"),
        Some(6.0),
        "{metrics}"
    );
    assert_eq!(sample(&metrics, "pacs_net_shared_redis_up{"), Some(1.0), "{metrics}");
    let stats = scp.stats();
    assert_eq!(stats.rejected, 0, "no association rejected: {stats:?}");
    assert!(stats.peak_active <= 6, "peak concurrent associations <= 6: {stats:?}");
    assert!(stats.store_requests >= 4 * 26, "{stats:?}");
    assert_eq!(live_leases(redis.port, scp.port()), 0, "every lease given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_shared_limit_the_pacs_rejects() {
    let (scp, _results, _) = four_stores(None, serde_json::json!({})).await;
    let stats = scp.stats();
    assert!(
        stats.rejected > 0,
        "4 × 8 associations overrun a PACS that takes 6: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_frees_its_slots_within_one_lease() {
    let Some(redis) = start_redis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let scp = scp_on(
        free_port(),
        Behavior {
            response_delay: Some(Duration::from_millis(500)),
            ..Behavior::default()
        },
    )
    .await;
    let lease_seconds = 2;
    let shared =
        serde_json::json!({"redis_url": format!("redis://127.0.0.1:{}/0", redis.port), "lease_seconds": lease_seconds});
    let config = write_config(
        dir.path(),
        scp.port(),
        Some(shared),
        serde_json::json!({"max_shared_associations": 4}),
    );
    let input = input_files(dir.path(), 4);
    let mut victim = pacs_net_cmd(
        &config,
        &[
            "store",
            "PACS",
            input.to_str().unwrap(),
            "--concurrency",
            "4",
            "--no-progress",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let start = Instant::now();
    while live_leases(redis.port, scp.port()) < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the victim took its 4 leases"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    victim.kill().unwrap(); // SIGKILL: no release, no renewal
    victim.wait().unwrap();
    let killed = Instant::now();
    while live_leases(redis.port, scp.port()) > 0 {
        assert!(
            killed.elapsed() < Duration::from_secs(lease_seconds + 1),
            "the killed process's leases expire within one lease"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The fleet's slots are usable again: a new process gets them.
    let results = run_all(vec![pacs_net_cmd(
        &config,
        &["echo", "PACS", "--count", "8", "--concurrency", "4"],
    )])
    .await;
    assert_eq!(results[0].0, 0, "{}", results[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_run_falls_back_and_comes_back() {
    if !peer_available(REDIS) {
        return;
    }
    let redis_port = free_port();
    let redis = start_redis_on(redis_port);
    let dir = tempfile::tempdir().unwrap();
    let scp = scp_on(
        free_port(),
        Behavior {
            response_delay: Some(Duration::from_millis(30)),
            ..Behavior::default()
        },
    )
    .await;
    let shared = serde_json::json!({"redis_url": format!("redis://127.0.0.1:{redis_port}/0"), "lease_seconds": 3});
    let pool = serde_json::json!({"x": {"max_size": 4, "max_uses": 2}});
    let config_path = write_config(
        dir.path(),
        scp.port(),
        Some(shared),
        serde_json::json!({"max_shared_associations": 4, "pool": "x"}),
    );
    // A pool that recycles its associations every 2 operations opens new ones all along.
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["network"] = serde_json::json!({"connection_pools": pool});
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let input = input_files(dir.path(), 20);
    let child = pacs_net_cmd(
        &config_path,
        &[
            "-v",
            "store",
            "PACS",
            input.to_str().unwrap(),
            "--concurrency",
            "4",
            "--no-progress",
            "--stats",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(redis); // stopped by PID, mid-run
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _redis = start_redis_on(redis_port);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "DICOM traffic never stops: {stderr}");
    assert!(stderr.contains("falls back to its own limits"), "a warning: {stderr}");
    assert!(stderr.contains("Redis is back"), "back to shared limits: {stderr}");
    let fallbacks = stderr
        .lines()
        .find(|l| l.contains("shared: acquired / renew failures / fallbacks"))
        .unwrap_or_else(|| panic!("--stats shows the shared figures: {stderr}"));
    let last: u64 = fallbacks.rsplit('/').next().unwrap().trim().parse().unwrap();
    assert!(last > 0, "fallbacks counted: {fallbacks}");
    assert!(scp.stats().store_requests >= 20 * 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opened_by_one_process_makes_the_others_fail_fast() {
    let Some(redis) = start_redis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pacs_port = free_port(); // nothing listens yet: the first process's breaker opens
    let shared = serde_json::json!({"redis_url": format!("redis://127.0.0.1:{}/0", redis.port)});
    let config = write_config(
        dir.path(),
        pacs_port,
        Some(shared),
        serde_json::json!({"shared_breaker": true, "retry": {"max_attempts": 1},
                           "circuit_breaker": {"failure_threshold": 1, "open_duration_seconds": 30}}),
    );
    let first = run_all(vec![pacs_net_cmd(&config, &["echo", "PACS"])]).await;
    assert_eq!(first[0].0, 1, "{}", first[0].1);
    // The PACS is up now, but the fleet's circuit is open: the next process sends nothing.
    let scp = scp_on(pacs_port, Behavior::default()).await;
    let started = Instant::now();
    let second = run_all(vec![pacs_net_cmd(&config, &["echo", "PACS"])]).await;
    assert_eq!(second[0].0, 1, "{}", second[0].1);
    assert!(
        second[0].1.contains("circuit open for node PACS across the fleet"),
        "{}",
        second[0].1
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(scp.stats().accepted, 0, "failed fast: no association opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_unavailable_fail_gives_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let scp = scp_on(free_port(), Behavior::default()).await;
    let dead_redis = free_port();
    let shared =
        serde_json::json!({"redis_url": format!("redis://:s3cret@127.0.0.1:{dead_redis}/0"), "on_unavailable": "fail"});
    let config = write_config(
        dir.path(),
        scp.port(),
        Some(shared),
        serde_json::json!({"max_shared_associations": 2}),
    );
    let results = run_all(vec![pacs_net_cmd(&config, &["echo", "PACS"])]).await;
    let (code, stderr) = &results[0];
    assert_eq!(*code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!("Redis at redis://127.0.0.1:{dead_redis}/0 is unavailable"))
            && stderr.contains("on_unavailable is \"fail\""),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "no password in errors: {stderr}");
    assert_eq!(scp.stats().accepted, 0);
}

#[test]
fn config_checks_name_the_field() {
    let err = |json: &str| Config::from_json_str(json).unwrap_err().to_string();
    let node = r#""ae_title": "A", "host": "127.0.0.1", "port": 104"#;
    assert!(err(r#"{"shared_limits": {"redis_ur": "redis://h"}}"#).contains("shared_limits.redis_ur"));
    assert!(err(r#"{"shared_limits": {"lease_seconds": 0}}"#).contains("shared_limits.lease_seconds"));
    assert!(err(r#"{"shared_limits": {"on_unavailable": "maybe"}}"#).contains("shared_limits.on_unavailable"));
    assert!(err(r#"{"shared_limits": {"redis_url": "http://h"}}"#).contains("shared_limits.redis_url"));
    let e = err(&format!(
        r#"{{"nodes": {{"N": {{{node}, "max_shared_associations": 3}}}}}}"#
    ));
    assert!(
        e.contains("nodes.N.max_shared_associations") && e.contains("shared_limits"),
        "{e}"
    );
    let e = err(&format!(r#"{{"nodes": {{"N": {{{node}, "shared_breaker": true}}}}}}"#));
    assert!(e.contains("nodes.N.shared_breaker"), "{e}");
    let e = err(&format!(
        r#"{{"shared_limits": {{}}, "nodes": {{"N": {{{node}, "max_shared_associations": 0}}}}}}"#
    ));
    assert!(e.contains("nodes.N.max_shared_associations"), "{e}");
    let ok = Config::from_json_str(&format!(
        r#"{{"shared_limits": {{"redis_url": "redis://:pw@10.0.0.1:6379/0"}}, "nodes": {{"N": {{{node}, "max_shared_associations": 3, "shared_breaker": true}}}}}}"#
    ))
    .unwrap();
    let shared = ok.shared_limits.as_ref().unwrap();
    assert_eq!(shared.lease, Duration::from_secs(30));
    assert_eq!(shared.on_unavailable, pacs_net::config::OnUnavailable::Local);
    assert!(!format!("{shared:?}").contains("pw"));
    assert_eq!(ok.nodes["N"].max_shared_associations, Some(3));
    assert!(ok.nodes["N"].shared_breaker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_shared_open_period_a_probe_closes_the_circuit_for_everyone() {
    let Some(redis) = start_redis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pacs_port = free_port();
    let shared = serde_json::json!({"redis_url": format!("redis://127.0.0.1:{}/0", redis.port)});
    let config = write_config(
        dir.path(),
        pacs_port,
        Some(shared),
        serde_json::json!({"shared_breaker": true, "retry": {"max_attempts": 1},
                           "circuit_breaker": {"failure_threshold": 1, "open_duration_seconds": 1}}),
    );
    let first = run_all(vec![pacs_net_cmd(&config, &["echo", "PACS"])]).await;
    assert_eq!(first[0].0, 1, "{}", first[0].1);
    let scp = scp_on(pacs_port, Behavior::default()).await;
    // Within the open period: fail fast.
    let refused = run_all(vec![pacs_net_cmd(&config, &["echo", "PACS"])]).await;
    assert!(refused[0].1.contains("across the fleet"), "{}", refused[0].1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Half-open: the fleet's probe goes through and closes the circuit; after it,
    // everyone passes.
    let probe = run_all(vec![pacs_net_cmd(&config, &["echo", "PACS"])]).await;
    assert_eq!(probe[0].0, 0, "{}", probe[0].1);
    let after = run_all(vec![
        pacs_net_cmd(&config, &["echo", "PACS", "--count", "3"]),
        pacs_net_cmd(&config, &["echo", "PACS", "--count", "3"]),
    ])
    .await;
    for (code, stderr) in &after {
        assert_eq!(*code, 0, "{stderr}");
    }
    assert_eq!(scp.stats().echoes, 7);
}

#[test]
fn config_check_shows_the_shared_limits_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        104,
        Some(
            serde_json::json!({"redis_url": "redis://:s3cret@10.1.1.1:6379/2", "lease_seconds": 12, "on_unavailable": "fail"}),
        ),
        serde_json::json!({"max_shared_associations": 10, "shared_breaker": true}),
    );
    let (code, stdout, stderr) = common::pacs_net(&["config", "check", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    for expected in [
        "redis://10.1.1.1:6379/2",
        "on_unavailable",
        "fail",
        "max_shared_associations",
        "10",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    assert!(!stdout.contains("s3cret") && !stderr.contains("s3cret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_a_lease_respects_the_acquire_timeout() {
    let Some(redis) = start_redis() else { return };
    let dir = tempfile::tempdir().unwrap();
    let scp = scp_on(
        free_port(),
        Behavior {
            response_delay: Some(Duration::from_millis(300)),
            ..Behavior::default()
        },
    )
    .await;
    let shared = serde_json::json!({"redis_url": format!("redis://127.0.0.1:{}/0", redis.port), "lease_seconds": 5});
    let config_path = write_config(
        dir.path(),
        scp.port(),
        Some(shared),
        serde_json::json!({"max_shared_associations": 1, "pool": "short"}),
    );
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
    config["network"] = serde_json::json!({"connection_pools": {"short": {"acquire_timeout_ms": 500}}});
    std::fs::write(&config_path, serde_json::to_vec(&config).unwrap()).unwrap();
    let input = input_files(dir.path(), 1);
    let mut holder = pacs_net_cmd(
        &config_path,
        &[
            "store",
            "PACS",
            input.to_str().unwrap(),
            "--concurrency",
            "1",
            "--no-progress",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let start = Instant::now();
    while live_leases(redis.port, scp.port()) < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the holder took the only lease"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let waiter = run_all(vec![pacs_net_cmd(&config_path, &["echo", "PACS", "--attempts", "1"])]).await;
    let waited = started.elapsed();
    let (code, stderr) = &waiter[0];
    assert_eq!(*code, 1, "{stderr}");
    assert!(
        stderr.contains("no lease of node PACS's fleet-wide cap within 0.5s"),
        "{stderr}"
    );
    assert!(
        waited < Duration::from_secs(4),
        "gave up after the acquire timeout: {waited:?}"
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
}
