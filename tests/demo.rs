//! `pacs-net demo`, the README's first command: every service it shows works
//! against the embedded SCP, with no network and no config.

use std::process::Command;

#[test]
fn demo_runs_every_service_against_the_embedded_scp() {
    let out = Command::new(env!("CARGO_BIN_EXE_pacs-net"))
        .arg("demo")
        .output()
        .expect("pacs-net runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("10 ok, last status 0000"), "C-ECHO: {stdout}");
    assert!(stdout.contains("13 of 13 files stored"), "C-STORE: {stdout}");
    assert!(stdout.contains("4 studies, final status 0000"), "C-FIND: {stdout}");
    let get = stdout.split("== C-GET").nth(1).unwrap_or_default();
    assert!(
        get.contains("5 completed, 0 failed, final status 0000"),
        "C-GET: {stdout}"
    );
    let moved = stdout.split("== C-MOVE").nth(1).unwrap_or_default();
    assert!(
        moved.contains("5 completed, 0 failed, final status 0000")
            && moved.contains("the listener filed 5 instance(s)"),
        "C-MOVE: {stdout}"
    );
    assert!(stdout.contains("1 gets, 1 moves"), "the SCP saw both: {stdout}");
    let commit = stdout.split("== Storage Commitment").nth(1).unwrap_or_default();
    assert!(
        commit.contains("storage commitment of 14 instances: 13 committed, 1 failed, 0 unknown")
            && commit.contains("commitment failed: 0112 no such object instance"),
        "storage commitment: {stdout}"
    );
}
