//! Peak memory against an SCP whose C-FIND identifier declares a 4 GiB element:
//! alone in its test binary, so the process's peak RSS is this test's.

#[path = "hostile_fake/mod.rs"]
mod fake;

use std::ops::ControlFlow;

use pacs_net::client::Node;
use pacs_net::config::{AdHocTarget, NodeConfig};
use pacs_net::dimse::{FindQuery, QueryLevel, QueryModel};

/// VmHWM (peak resident set) of this process, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[tokio::test]
async fn a_4_gib_length_in_a_c_find_identifier_leaves_peak_rss_under_128_mb() {
    let fake = fake::start(fake::Script::HugeLength).await;
    let target: AdHocTarget = format!("{}@127.0.0.1:{}", fake::AE, fake.port).parse().unwrap();
    let node = Node::new(NodeConfig::ad_hoc(&target), "HOSTILETEST");
    let query = FindQuery::new(QueryModel::StudyRoot, QueryLevel::Study, vec![]).unwrap();
    let out = node.find(&query, |_| ControlFlow::Continue(())).await;
    let err = out
        .result
        .expect_err("a malformed identifier fails the query")
        .to_string();
    assert!(err.contains("declares 4294967280 bytes"), "{err}");
    let peak = peak_rss();
    assert!(peak < 128 * 1024 * 1024, "peak RSS {} MB", peak / (1024 * 1024));
}
