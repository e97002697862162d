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

/// A peer that reads our A-ASSOCIATE-RQ and answers with `answer` raw bytes.
async fn raw_peer(answer: &'static [u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut hdr = [0u8; 6];
            if s.read_exact(&mut hdr).await.is_err() {
                continue;
            }
            let len = u32::from_be_bytes([hdr[2], hdr[3], hdr[4], hdr[5]]) as usize;
            let mut body = vec![0u8; len.min(1 << 20)];
            let _ = s.read_exact(&mut body).await;
            let _ = s.write_all(answer).await;
            // Then close.
        }
    });
    port
}

/// An A-ASSOCIATE-AC header that claims 4 GiB, a few bytes, and a close; and a
/// P-DATA-TF header far above the maximum we announced: neither is buffered.
#[tokio::test]
async fn pdus_claiming_4_gib_leave_peak_rss_under_128_mb() {
    use pacs_net::association::{Association, AssociationParams, Profile};
    for answer in [
        &[0x02, 0, 0xFF, 0xFF, 0xFF, 0xF0, 0, 1, 0, 0][..],
        &[0x04, 0, 0xFF, 0xFF, 0xFF, 0xF0, 0, 0, 0, 9][..],
    ] {
        let port = raw_peer(answer).await;
        let params = AssociationParams {
            calling_ae: "HOSTILETEST".into(),
            called_ae: "FAKE".into(),
            host: "127.0.0.1".into(),
            port,
            max_pdu_length: 16384,
            max_send_pdu_length: 0,
            timeouts: pacs_net::config::Timeouts::default(),
            security: Default::default(),
        };
        let err = Association::establish(&params, &Profile::Default)
            .await
            .expect_err("no association")
            .to_string();
        assert!(err.contains("malformed PDU") && err.contains("4294967280"), "{err}");
    }
    let peak = peak_rss();
    assert!(peak < 128 * 1024 * 1024, "peak RSS {} MB", peak / (1024 * 1024));
}
