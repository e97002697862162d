//! Operations and failures per node, read from the client's telemetry (every
//! operation the application runs through the client, and the monitor's probes).
//!
//! The counters are looked up by their label sets (never created), over every
//! DIMSE operation, outcome and status class there is.

use crate::client::Telemetry;

/// The `operation` label values a node's operations may carry.
const OPERATIONS: [&str; 11] = [
    "C-ECHO",
    "C-STORE",
    "C-FIND",
    "C-GET",
    "C-MOVE",
    "N-ACTION",
    "N-EVENT-REPORT",
    "N-GET",
    "N-SET",
    "N-CREATE",
    "N-DELETE",
];
const OUTCOMES: [&str; 3] = ["success", "warning", "failure"];
const STATUS_CLASSES: [&str; 6] = ["none", "success", "warning", "pending", "cancel", "failure"];

/// `(operations, failed operations)` of one node (by name and AE title) since the
/// client started.
pub(crate) fn count(telemetry: &Telemetry, node: &str, ae_title: &str) -> (u64, u64) {
    let mut total = 0;
    let mut failed = 0;
    let mut labels: Vec<(String, String)> = vec![
        ("node".into(), node.into()),
        ("ae_title".into(), ae_title.into()),
        ("operation".into(), String::new()),
        ("outcome".into(), String::new()),
        ("status_class".into(), String::new()),
    ];
    for op in OPERATIONS {
        labels[2].1 = op.into();
        for outcome in OUTCOMES {
            labels[3].1 = outcome.into();
            for class in STATUS_CLASSES {
                labels[4].1 = class.into();
                if let Some(c) = telemetry.operations.get(&labels) {
                    let n = c.get();
                    total += n;
                    if outcome == "failure" {
                        failed += n;
                    }
                }
            }
        }
    }
    (total, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(node: &str, op: &str, outcome: &str, class: &str) -> Vec<(String, String)> {
        [
            ("node", node),
            ("ae_title", "X"),
            ("operation", op),
            ("outcome", outcome),
            ("status_class", class),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn operations_and_failures_by_node() {
        let t = Telemetry::default();
        t.operations
            .get_or_create(&labels("A", "C-ECHO", "success", "success"))
            .inc_by(3);
        t.operations
            .get_or_create(&labels("A", "C-STORE", "failure", "none"))
            .inc();
        t.operations
            .get_or_create(&labels("A", "C-STORE", "failure", "failure"))
            .inc();
        t.operations
            .get_or_create(&labels("B \"q\",x", "C-FIND", "warning", "warning"))
            .inc();
        assert_eq!(count(&t, "A", "X"), (5, 2));
        assert_eq!(count(&t, "B \"q\",x", "X"), (1, 0));
        assert_eq!(count(&t, "C", "X"), (0, 0));
    }
}
