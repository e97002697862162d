//! Unit tests of the config module: the spec's example, every error path, ad-hoc targets.

use std::time::Duration;

use super::*;

/// The example of interface.md, "The hospital JSON config", verbatim.
const SPEC_EXAMPLE: &str = r#"{
  "local_ae_title": "PACSNET",
  "nodes": {
    "MAIN_PACS": {
      "ae_title": "ORTHANC", "host": "127.0.0.1", "port": 4242,
      "pool": "main_pacs",
      "max_pdu_length": 16384,
      "timeouts": {"connect_ms": 5000, "acse_ms": 10000, "dimse_ms": 30000},
      "retry": {"max_attempts": 5},
      "circuit_breaker": {"failure_threshold": 10}
    },
    "CT_SCANNER": {"ae_title": "CT01", "host": "10.1.2.3", "port": 104, "pool": "modalities"}
  },
  "network": {
    "connection_pools": {
      "main_pacs":  {"min_size": 5, "max_size": 20, "max_idle_time": 600, "validation_interval": 60},
      "modalities": {"min_size": 2, "max_size": 10, "max_idle_time": 300, "validation_interval": 30}
    },
    "retry": {
      "max_attempts": 3, "initial_delay_ms": 1000, "max_delay_ms": 30000,
      "strategy": "exponential_jitter", "backoff_multiplier": 2.0, "jitter_factor": 0.1
    },
    "circuit_breaker": {
      "failure_threshold": 5, "success_threshold": 2, "open_duration_seconds": 60
    }
  }
}"#;

/// The error of `text`, which must not be a valid config.
fn error_of(text: &str) -> ConfigError {
    match Config::from_json_str(text) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(e) => e,
    }
}

/// Asserts that `text` fails with an `Invalid` error at exactly `path`, whose
/// message names the path and contains `needle`; returns the message.
fn assert_invalid(text: &str, path: &str, needle: &str) -> String {
    let error = error_of(text);
    let message = error.to_string();
    assert_eq!(error.path(), Some(path), "wrong path in: {message}");
    assert!(
        message.contains(&format!("{path}: ")),
        "path {path:?} missing in: {message}"
    );
    assert!(message.contains(needle), "{needle:?} missing in: {message}");
    assert!(!message.contains('\n'), "not one line: {message}");
    message
}

/// A config with one node `N` whose JSON object is `{"ae_title": "PEER", "host": "h", "port": 104, <extra>}`.
fn one_node(extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!(r#"{{"nodes": {{"N": {{"ae_title": "PEER", "host": "h", "port": 104{extra}}}}}}}"#)
}

/// A config with `network.<section>` set to `body` and no nodes.
fn network(section: &str, body: &str) -> String {
    format!(r#"{{"network": {{"{section}": {body}}}}}"#)
}

// ---------------------------------------------------------------- the example

#[test]
fn spec_example_parses_and_merges() {
    let config = Config::from_json_str(SPEC_EXAMPLE).expect("the spec's example is valid");
    assert_eq!(config.local_ae_title, "PACSNET");
    assert_eq!(config.node_names(), vec!["CT_SCANNER", "MAIN_PACS"]);

    let main = config.node("MAIN_PACS").expect("MAIN_PACS");
    assert_eq!(main.name, "MAIN_PACS");
    assert_eq!(main.ae_title, "ORTHANC");
    assert_eq!(main.host, "127.0.0.1");
    assert_eq!(main.port, 4242);
    assert_eq!(main.max_pdu_length, 16384);
    assert_eq!(main.pool_name.as_deref(), Some("main_pacs"));
    assert_eq!(main.pool.min_size, 5);
    assert_eq!(main.pool.max_size, 20);
    assert_eq!(main.pool.max_idle_time, Duration::from_secs(600));
    assert_eq!(main.pool.validation_interval, Duration::from_secs(60));
    // Pool fields the file leaves out: built-in defaults.
    let d = PoolSettings::default();
    assert_eq!(main.pool.acquire_timeout, d.acquire_timeout);
    assert_eq!(main.pool.max_concurrent_opens, d.max_concurrent_opens);
    assert_eq!(main.pool.max_lifetime, None);
    // Node retry overrides max_attempts only; the rest comes from network.
    assert_eq!(main.retry.max_attempts, 5);
    assert_eq!(main.retry.initial_delay, Duration::from_millis(1000));
    assert_eq!(main.retry.max_delay, Duration::from_millis(30000));
    assert_eq!(main.retry.strategy, RetryStrategy::ExponentialJitter);
    assert_eq!(main.retry.backoff_multiplier, 2.0);
    assert_eq!(main.retry.jitter_factor, 0.1);
    // Not in the file at all: built-in defaults.
    assert_eq!(main.retry.budget_percent, 20.0);
    assert_eq!(main.retry.budget_min_per_second, 10.0);
    // Breaker: node overrides failure_threshold only.
    assert_eq!(main.breaker.failure_threshold, 10);
    assert_eq!(main.breaker.success_threshold, 2);
    assert_eq!(main.breaker.open_duration, Duration::from_secs(60));
    assert_eq!(main.breaker.half_open_max_calls, 1);
    assert_eq!(main.timeouts.connect, Duration::from_millis(5000));
    assert_eq!(main.timeouts.acse, Duration::from_millis(10000));
    assert_eq!(main.timeouts.dimse, Duration::from_millis(30000));

    let ct = config.node("CT_SCANNER").expect("CT_SCANNER");
    assert_eq!(ct.ae_title, "CT01");
    assert_eq!((ct.host.as_str(), ct.port), ("10.1.2.3", 104));
    assert_eq!(ct.pool_name.as_deref(), Some("modalities"));
    assert_eq!(ct.pool.min_size, 2);
    assert_eq!(ct.pool.max_size, 10);
    assert_eq!(ct.pool.max_idle_time, Duration::from_secs(300));
    assert_eq!(ct.pool.validation_interval, Duration::from_secs(30));
    assert_eq!(ct.retry.max_attempts, 3);
    assert_eq!(ct.breaker.failure_threshold, 5);
    assert_eq!(ct.timeouts, Timeouts::default());
    assert_eq!(ct.max_pdu_length, DEFAULT_MAX_PDU_LENGTH);

    assert!(config.node("NOPE").is_none());
}

#[test]
fn empty_object_is_valid_with_no_nodes() {
    let config = Config::from_json_str("{}").expect("{} is valid");
    assert!(config.nodes.is_empty());
    assert!(config.node_names().is_empty());
    assert_eq!(config.local_ae_title, DEFAULT_LOCAL_AE_TITLE);
    assert!(config.describe().contains("none"));
}

#[test]
fn null_sections_count_as_absent() {
    let config = Config::from_json_str(r#"{"nodes": null, "network": null}"#).expect("valid");
    assert!(config.nodes.is_empty());
}

#[test]
fn node_without_pool_uses_builtin_defaults_everywhere() {
    let config = Config::from_json_str(&one_node("")).expect("valid");
    let node = config.node("N").expect("N");
    assert_eq!(node.pool_name, None);
    assert_eq!(node.pool, PoolSettings::default());
    assert_eq!(node.timeouts, Timeouts::default());
    assert_eq!(node.retry, RetrySettings::default());
    assert_eq!(node.breaker, BreakerSettings::default());
    assert_eq!(node.max_pdu_length, DEFAULT_MAX_PDU_LENGTH);
}

#[test]
fn min_size_zero_is_valid() {
    let text = r#"{"network": {"connection_pools": {"p": {"min_size": 0, "max_size": 1}}},
        "nodes": {"N": {"ae_title": "A", "host": "h", "port": 1, "pool": "p"}}}"#;
    let config = Config::from_json_str(text).expect("min_size 0 is valid");
    let node = config.node("N").expect("N");
    assert_eq!((node.pool.min_size, node.pool.max_size), (0, 1));
}

#[test]
fn every_pool_field_is_read() {
    let text = r#"{"network": {"connection_pools": {"p": {
        "min_size": 1, "max_size": 3, "max_idle_time": 7, "validation_interval": 8,
        "max_lifetime": 9, "max_uses": 10, "acquire_timeout_ms": 11,
        "validate_on_borrow": false, "max_waiters": 12, "max_concurrent_opens": 2,
        "leak_threshold_seconds": 13}}},
        "nodes": {"N": {"ae_title": "A", "host": "h", "port": 1, "pool": "p"}}}"#;
    let config = Config::from_json_str(text).expect("valid");
    let expected = PoolSettings {
        min_size: 1,
        max_size: 3,
        max_idle_time: Duration::from_secs(7),
        validation_interval: Duration::from_secs(8),
        max_lifetime: Some(Duration::from_secs(9)),
        max_uses: Some(10),
        acquire_timeout: Duration::from_millis(11),
        validate_on_borrow: false,
        max_waiters: Some(12),
        max_concurrent_opens: 2,
        leak_threshold: Some(Duration::from_secs(13)),
    };
    assert_eq!(config.node("N").expect("N").pool, expected);
}

#[test]
fn network_timeouts_merge_field_by_field() {
    let text = r#"{"network": {"timeouts": {"connect_ms": 111, "dimse_ms": 333}},
        "nodes": {"N": {"ae_title": "A", "host": "h", "port": 1, "timeouts": {"dimse_ms": 999}}}}"#;
    let node = Config::from_json_str(text).expect("valid").nodes["N"].clone();
    assert_eq!(node.timeouts.connect, Duration::from_millis(111));
    assert_eq!(node.timeouts.acse, Timeouts::default().acse);
    assert_eq!(node.timeouts.dimse, Duration::from_millis(999));
}

#[test]
fn every_retry_and_breaker_field_is_read() {
    let text = r#"{"nodes": {"N": {"ae_title": "A", "host": "h", "port": 1,
        "retry": {"max_attempts": 4, "initial_delay_ms": 5, "max_delay_ms": 6,
                  "strategy": "fibonacci", "backoff_multiplier": 1, "jitter_factor": 1.0,
                  "budget_percent": 0, "budget_min_per_second": 2.5},
        "circuit_breaker": {"failure_threshold": 7, "success_threshold": 8,
                            "open_duration_seconds": 0, "half_open_max_calls": 9}}}}"#;
    let node = Config::from_json_str(text).expect("valid").nodes["N"].clone();
    assert_eq!(
        node.retry,
        RetrySettings {
            max_attempts: 4,
            initial_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(6),
            strategy: RetryStrategy::Fibonacci,
            backoff_multiplier: 1.0,
            jitter_factor: 1.0,
            budget_percent: 0.0,
            budget_min_per_second: 2.5,
        }
    );
    assert_eq!(
        node.breaker,
        BreakerSettings {
            failure_threshold: 7,
            success_threshold: 8,
            open_duration: Duration::ZERO,
            half_open_max_calls: 9,
        }
    );
}

#[test]
fn every_strategy_name_is_accepted() {
    for strategy in [
        RetryStrategy::Fixed,
        RetryStrategy::Linear,
        RetryStrategy::Exponential,
        RetryStrategy::ExponentialJitter,
        RetryStrategy::Fibonacci,
    ] {
        let text = one_node(&format!(r#""retry": {{"strategy": "{}"}}"#, strategy.as_str()));
        let config = Config::from_json_str(&text).expect("valid strategy");
        assert_eq!(config.nodes["N"].retry.strategy, strategy);
    }
}

#[test]
fn ae_titles_are_trimmed() {
    let text = r#"{"local_ae_title": "  US  ",
        "nodes": {"N": {"ae_title": " PEER ", "host": "h", "port": 1}}}"#;
    let config = Config::from_json_str(text).expect("valid");
    assert_eq!(config.local_ae_title, "US");
    assert_eq!(config.nodes["N"].ae_title, "PEER");
}

#[test]
fn bracketed_ipv6_host_is_stored_bare() {
    let config = Config::from_json_str(
        r#"{"nodes": {"A": {"ae_title": "A", "host": "[::1]", "port": 1},
                      "B": {"ae_title": "B", "host": "fe80::1", "port": 2}}}"#,
    )
    .expect("valid");
    assert_eq!(config.nodes["A"].host, "::1");
    assert_eq!(config.nodes["B"].host, "fe80::1");
}

// ---------------------------------------------------------------- parse errors

#[test]
fn malformed_json_names_line_and_column() {
    let text = "{\n  \"nodes\": {\n    \"N\": {\"ae_title\": \"A\",, }\n  }\n}";
    let error = error_of(text);
    let message = error.to_string();
    assert!(matches!(error, ConfigError::Syntax { line: 3, .. }), "{error:?}");
    assert!(message.contains("line 3 column"), "{message}");
    assert!(message.contains("malformed JSON"), "{message}");
    assert_eq!(error.path(), None);
}

#[test]
fn truncated_and_trailing_json_are_syntax_errors() {
    let error = error_of("{\"nodes\": {");
    assert!(error.to_string().contains("line 1 column"), "{error}");
    let error = error_of("{} {}");
    assert!(
        matches!(error, ConfigError::Syntax { line: 1, column: 4, .. }),
        "{error:?}"
    );
    let error = error_of("");
    assert!(matches!(error, ConfigError::Syntax { .. }), "{error:?}");
}

#[test]
fn unknown_field_path_includes_the_field() {
    let text = r#"{"nodes": {"MAIN_PACS": {"ae_title": "A", "host": "h", "prot": 104}}}"#;
    let message = assert_invalid(text, "nodes.MAIN_PACS.prot", "unknown field");
    // The expected fields are listed.
    assert!(message.contains("`port`"), "{message}");
}

#[test]
fn unknown_field_at_every_level() {
    assert_invalid(r#"{"nodez": {}}"#, "nodez", "unknown field");
    assert_invalid(&network("retri", "{}"), "network.retri", "unknown field");
    assert_invalid(
        &network("connection_pools", r#"{"p": {"max_sise": 1}}"#),
        "network.connection_pools.p.max_sise",
        "unknown field",
    );
    assert_invalid(
        &network("retry", r#"{"max_attempt": 1}"#),
        "network.retry.max_attempt",
        "unknown field",
    );
    assert_invalid(
        &network("circuit_breaker", r#"{"threshold": 1}"#),
        "network.circuit_breaker.threshold",
        "unknown field",
    );
    assert_invalid(
        &network("timeouts", r#"{"read_ms": 1}"#),
        "network.timeouts.read_ms",
        "unknown field",
    );
    assert_invalid(
        &one_node(r#""timeouts": {"connect": 1}"#),
        "nodes.N.timeouts.connect",
        "unknown field",
    );
    assert_invalid(
        &one_node(r#""retry": {"tries": 1}"#),
        "nodes.N.retry.tries",
        "unknown field",
    );
    assert_invalid(
        &one_node(r#""circuit_breaker": {"x": 1}"#),
        "nodes.N.circuit_breaker.x",
        "unknown field",
    );
}

#[test]
fn wrong_type_names_path_and_serde_message() {
    let text = r#"{"nodes": {"MAIN_PACS": {"ae_title": "A", "host": "h", "port": "x"}}}"#;
    let message = assert_invalid(
        text,
        "nodes.MAIN_PACS.port",
        r#"nodes.MAIN_PACS.port: invalid type: string "x", expected u16"#,
    );
    assert!(message.contains("line 1 column"), "{message}");

    assert_invalid(
        &one_node(r#""retry": {"max_attempts": 1.5}"#),
        "nodes.N.retry.max_attempts",
        "invalid type",
    );
    assert_invalid(
        &one_node(r#""pool": 3"#),
        "nodes.N.pool",
        "invalid type: integer `3`, expected a string",
    );
    assert_invalid(
        &network("connection_pools", r#"{"p": {"validate_on_borrow": "yes"}}"#),
        "network.connection_pools.p.validate_on_borrow",
        "expected a boolean",
    );
    assert_invalid(r#"{"local_ae_title": 5}"#, "local_ae_title", "invalid type");
    assert_invalid(r#"{"nodes": []}"#, "nodes", "invalid type");
    assert_invalid(r#"{"nodes": {"N": 1}}"#, "nodes.N", "invalid type");
}

#[test]
fn port_out_of_u16_range_is_a_type_error() {
    assert_invalid(&one_node("").replace("104", "70000"), "nodes.N.port", "70000");
    assert_invalid(&one_node("").replace("104", "-1"), "nodes.N.port", "-1");
}

#[test]
fn top_level_not_an_object() {
    for text in ["[]", "[\"PACSNET\"]"] {
        let error = error_of(text);
        let message = error.to_string();
        assert!(matches!(error, ConfigError::Invalid { .. }), "{error:?}");
        assert_eq!(error.path(), None);
        assert!(message.contains("invalid type: array"), "{message}");
    }
    let message = error_of("7").to_string();
    assert!(message.contains("expected a JSON object"), "{message}");
    assert!(!message.contains("Raw"), "internal name leaked: {message}");
}

#[test]
fn arrays_are_never_accepted_for_objects() {
    // serde derive would take these positionally; the config has no lists.
    assert_invalid(
        &one_node(r#""timeouts": [1, 2, 3]"#),
        "nodes.N.timeouts",
        "invalid type: array",
    );
    assert_invalid(r#"{"nodes": {"N": ["A", "h", 104]}}"#, "nodes.N", "invalid type: array");
    assert_invalid(&one_node("").replace("104", "[104]"), "nodes.N.port", "array");
}

#[test]
fn unknown_strategy_lists_the_names() {
    assert_invalid(
        &network("retry", r#"{"strategy": "random"}"#),
        "network.retry.strategy",
        "`exponential_jitter`",
    );
}

#[test]
fn missing_required_field_path_includes_the_field() {
    assert_invalid(
        r#"{"nodes": {"MAIN_PACS": {"ae_title": "A", "host": "h"}}}"#,
        "nodes.MAIN_PACS.port",
        "missing field",
    );
    assert_invalid(
        r#"{"nodes": {"MAIN_PACS": {"host": "h", "port": 1}}}"#,
        "nodes.MAIN_PACS.ae_title",
        "missing field",
    );
    assert_invalid(
        r#"{"nodes": {"MAIN_PACS": {"ae_title": "A", "port": 1}}}"#,
        "nodes.MAIN_PACS.host",
        "missing field",
    );
}

#[test]
fn duplicate_field_and_duplicate_node_are_errors() {
    assert_invalid(
        r#"{"nodes": {"N": {"ae_title": "A", "host": "h", "port": 1, "port": 2}}}"#,
        "nodes.N.port",
        "twice",
    );
    assert_invalid(
        r#"{"nodes": {"N": {"ae_title": "A", "host": "h", "port": 1},
                      "N": {"ae_title": "B", "host": "h", "port": 2}}}"#,
        "nodes.N",
        "defined twice",
    );
    assert_invalid(
        &network("connection_pools", r#"{"p": {}, "p": {}}"#),
        "network.connection_pools.p",
        "defined twice",
    );
}

// ---------------------------------------------------------------- AE titles

#[test]
fn invalid_ae_titles_name_path_and_reason() {
    let cases = [
        ("", "empty"),
        ("    ", "all spaces"),
        ("ABCDEFGHIJKLMNOPQ", "17 characters"),
        ("A\\B", "backslash"),
        ("A\tB", "control character"),
        ("A\u{1}B", "control character"),
        ("ÄRZTE", "printable ASCII"),
    ];
    for (ae, reason) in cases {
        let escaped = serde_json::to_string(ae).expect("a string serializes");
        assert_invalid(&format!(r#"{{"local_ae_title": {escaped}}}"#), "local_ae_title", reason);
        assert_invalid(
            &format!(r#"{{"nodes": {{"N": {{"ae_title": {escaped}, "host": "h", "port": 1}}}}}}"#),
            "nodes.N.ae_title",
            reason,
        );
    }
}

#[test]
fn validate_ae_title_rules() {
    assert_eq!(validate_ae_title("ORTHANC"), Ok(()));
    assert_eq!(validate_ae_title("ABCDEFGHIJKLMNOP"), Ok(()), "16 is the limit");
    assert_eq!(
        validate_ae_title(" ABCDEFGHIJKLMNOP "),
        Ok(()),
        "padding is insignificant"
    );
    assert_eq!(
        validate_ae_title("A B@C:1-_.~"),
        Ok(()),
        "inner spaces and punctuation are fine"
    );
    assert!(validate_ae_title("").is_err());
    assert!(validate_ae_title("   ").is_err());
    assert!(validate_ae_title("ABCDEFGHIJKLMNOPQ").is_err());
    assert!(validate_ae_title("A\\B").is_err());
    assert!(validate_ae_title("A\nB").is_err());
    assert!(validate_ae_title("A\u{7f}").is_err());
    assert!(validate_ae_title("CAFÉ").is_err());
    assert_eq!(normalize_ae_title("  CT01 ").as_deref(), Ok("CT01"));
}

// ---------------------------------------------------------------- value checks

#[test]
fn pool_value_errors_name_the_field() {
    let pool = |body: &str| network("connection_pools", &format!(r#"{{"main": {body}}}"#));
    assert_invalid(
        &pool(r#"{"min_size": 5, "max_size": 2}"#),
        "network.connection_pools.main.min_size",
        "min_size (5) is greater than max_size (2)",
    );
    assert_invalid(
        &pool(r#"{"min_size": 9}"#),
        "network.connection_pools.main.min_size",
        "the built-in default",
    );
    assert_invalid(
        &pool(r#"{"max_size": 0}"#),
        "network.connection_pools.main.max_size",
        "at least 1",
    );
    assert_invalid(
        &pool(r#"{"max_concurrent_opens": 0}"#),
        "network.connection_pools.main.max_concurrent_opens",
        "at least 1",
    );
    assert_invalid(
        &pool(r#"{"max_uses": 0}"#),
        "network.connection_pools.main.max_uses",
        "at least 1",
    );
}

#[test]
fn unknown_pool_lists_the_defined_ones() {
    let text = r#"{"network": {"connection_pools": {"b": {}, "a": {}}},
        "nodes": {"X": {"ae_title": "A", "host": "h", "port": 1, "pool": "foo"}}}"#;
    assert_invalid(text, "nodes.X.pool", r#"unknown pool "foo" (defined: a, b)"#);
    assert_invalid(&one_node(r#""pool": "foo""#), "nodes.N.pool", "no pools are defined");
}

#[test]
fn retry_value_errors_name_the_field() {
    for section in ["network.retry", "nodes.N.retry"] {
        let config = |body: &str| {
            if section == "network.retry" {
                network("retry", body)
            } else {
                one_node(&format!(r#""retry": {body}"#))
            }
        };
        let at = |field: &str| format!("{section}.{field}");
        assert_invalid(&config(r#"{"max_attempts": 0}"#), &at("max_attempts"), "at least 1");
        assert_invalid(
            &config(r#"{"jitter_factor": 1.5}"#),
            &at("jitter_factor"),
            "between 0 and 1",
        );
        assert_invalid(
            &config(r#"{"jitter_factor": -0.1}"#),
            &at("jitter_factor"),
            "between 0 and 1",
        );
        assert_invalid(
            &config(r#"{"backoff_multiplier": 0.5}"#),
            &at("backoff_multiplier"),
            "at least 1.0",
        );
        assert_invalid(&config(r#"{"budget_percent": -1}"#), &at("budget_percent"), "negative");
        assert_invalid(
            &config(r#"{"budget_min_per_second": -1}"#),
            &at("budget_min_per_second"),
            "negative",
        );
        assert_invalid(
            &config(r#"{"initial_delay_ms": 5000, "max_delay_ms": 100}"#),
            &at("initial_delay_ms"),
            "initial_delay_ms (5000) is greater than max_delay_ms (100)",
        );
    }
}

#[test]
fn delay_order_blames_the_most_specific_setting() {
    // The node lowers max_delay below network's initial delay: the node is at fault.
    let text = r#"{"network": {"retry": {"initial_delay_ms": 2000}},
        "nodes": {"N": {"ae_title": "A", "host": "h", "port": 1, "retry": {"max_delay_ms": 500}}}}"#;
    assert_invalid(
        text,
        "nodes.N.retry.max_delay_ms",
        "max_delay_ms (500) is less than initial_delay_ms (2000, set at network.retry.initial_delay_ms)",
    );
    // Network alone over the built-in max (30 s).
    assert_invalid(
        &network("retry", r#"{"initial_delay_ms": 60000}"#),
        "network.retry.initial_delay_ms",
        "the built-in default",
    );
}

#[test]
fn breaker_value_errors_name_the_field() {
    for field in ["failure_threshold", "success_threshold", "half_open_max_calls"] {
        assert_invalid(
            &network("circuit_breaker", &format!(r#"{{"{field}": 0}}"#)),
            &format!("network.circuit_breaker.{field}"),
            "at least 1",
        );
        assert_invalid(
            &one_node(&format!(r#""circuit_breaker": {{"{field}": 0}}"#)),
            &format!("nodes.N.circuit_breaker.{field}"),
            "at least 1",
        );
    }
}

#[test]
fn timeout_zero_is_an_error() {
    for field in ["connect_ms", "acse_ms", "dimse_ms"] {
        assert_invalid(
            &network("timeouts", &format!(r#"{{"{field}": 0}}"#)),
            &format!("network.timeouts.{field}"),
            "at least 1 ms",
        );
        assert_invalid(
            &one_node(&format!(r#""timeouts": {{"{field}": 0}}"#)),
            &format!("nodes.N.timeouts.{field}"),
            "at least 1 ms",
        );
    }
}

#[test]
fn node_value_errors_name_the_field() {
    assert_invalid(&one_node("").replace("104", "0"), "nodes.N.port", "port 0");
    assert_invalid(&one_node("").replace(r#""h""#, r#""""#), "nodes.N.host", "empty");
    assert_invalid(&one_node("").replace(r#""h""#, r#"" ""#), "nodes.N.host", "empty");
    assert_invalid(
        &one_node("").replace(r#""h""#, r#""pacs server""#),
        "nodes.N.host",
        "not a host name",
    );
    assert_invalid(&one_node("").replace(r#""h""#, r#""[::g]""#), "nodes.N.host", "IPv6");
    assert_invalid(&one_node(r#""max_pdu_length": 0"#), "nodes.N.max_pdu_length", "4096");
    assert_invalid(
        &one_node(r#""max_pdu_length": 4095"#),
        "nodes.N.max_pdu_length",
        "out of range",
    );
    assert_invalid(
        &one_node(r#""max_pdu_length": 1048577"#),
        "nodes.N.max_pdu_length",
        "out of range",
    );
    for ok in [4096, 131072, 1048576] {
        let text = one_node(&format!(r#""max_pdu_length": {ok}"#));
        let config = Config::from_json_str(&text).expect("in range");
        assert_eq!(config.nodes["N"].max_pdu_length, ok);
    }
}

#[test]
fn first_error_is_reported_in_file_order_of_checks() {
    // Two problems: the local AE title is checked before the nodes.
    let text = r#"{"local_ae_title": "", "nodes": {"N": {"ae_title": "A", "host": "h", "port": 0}}}"#;
    assert_invalid(text, "local_ae_title", "empty");
}

// ---------------------------------------------------------------- files

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.json");
    let error = Config::load(&missing).expect_err("no such file");
    let message = error.to_string();
    assert!(matches!(error, ConfigError::Io { .. }), "{error:?}");
    assert!(message.contains("missing.json"), "{message}");
    assert_eq!(error.file(), Some(missing.as_path()));

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, one_node("").replace("104", "0")).expect("write");
    let error = Config::load(&bad).expect_err("port 0");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("config {}: nodes.N.port: ", bad.display())),
        "{message}"
    );
    assert_eq!(error.path(), Some("nodes.N.port"));

    std::fs::write(&bad, "{\n\n  x").expect("write");
    let message = Config::load(&bad).expect_err("syntax").to_string();
    assert!(message.contains("bad.json"), "{message}");
    assert!(message.contains("line 3 column"), "{message}");

    let good = dir.path().join("good.json");
    std::fs::write(&good, SPEC_EXAMPLE).expect("write");
    assert_eq!(Config::load(&good).expect("valid").nodes.len(), 2);
}

// ---------------------------------------------------------------- ad-hoc targets

fn target(text: &str) -> Result<AdHocTarget, ConfigError> {
    text.parse()
}

fn target_error(text: &str) -> String {
    match target(text) {
        Ok(t) => panic!("{text:?} should not parse, got {t:?}"),
        Err(e) => {
            assert!(matches!(e, ConfigError::Target { .. }), "{e:?}");
            e.to_string()
        }
    }
}

#[test]
fn ad_hoc_target_parses() {
    let t = target("ORTHANC@127.0.0.1:4242").expect("valid");
    assert_eq!(
        t,
        AdHocTarget {
            ae_title: "ORTHANC".into(),
            host: "127.0.0.1".into(),
            port: 4242
        }
    );
    assert_eq!(t.to_string(), "ORTHANC@127.0.0.1:4242");

    let t = target("CT01@pacs-1.hospital.example:104").expect("host name");
    assert_eq!((t.host.as_str(), t.port), ("pacs-1.hospital.example", 104));

    let t = target("STORESCP@[::1]:11112").expect("IPv6");
    assert_eq!((t.host.as_str(), t.port), ("::1", 11112));
    assert_eq!(t.to_string(), "STORESCP@[::1]:11112");

    let t = target("A@B@host:65535").expect("an AE title may contain '@'");
    assert_eq!((t.ae_title.as_str(), t.host.as_str(), t.port), ("A@B", "host", 65535));

    let t = target(" PEER @h:1").expect("padding is insignificant");
    assert_eq!(t.ae_title, "PEER");
}

#[test]
fn ad_hoc_target_errors() {
    assert!(target_error("ORTHANC127.0.0.1:4242").contains("'@'"));
    assert!(target_error("ORTHANC@127.0.0.1").contains(":PORT"));
    assert!(target_error("ORTHANC@127.0.0.1:").contains("port is missing"));
    assert!(target_error("ORTHANC@127.0.0.1:0").contains("1 to 65535"));
    assert!(target_error("ORTHANC@127.0.0.1:65536").contains("1 to 65535"));
    assert!(target_error("ORTHANC@127.0.0.1:x").contains("1 to 65535"));
    assert!(target_error("ORTHANC@127.0.0.1:+104").contains("1 to 65535"));
    assert!(target_error("ABCDEFGHIJKLMNOPQ@h:104").contains("17 characters"));
    assert!(target_error("@h:104").contains("empty"));
    assert!(target_error("A\\B@h:104").contains("backslash"));
    assert!(target_error("A@:104").contains("host is empty"));
    assert!(target_error("A@::1:104").contains("brackets"));
    assert!(target_error("A@[::1:104").contains("']'"));
    assert!(target_error("A@[::1]104").contains(":PORT"));
    assert!(target_error("A@[nope]:104").contains("IPv6"));
    assert!(target_error("A@ho st:104").contains("not a host name"));
    let message = target_error("ORTHANC@host");
    assert!(message.contains("AET@HOST:PORT"), "{message}");
    assert!(message.contains("\"ORTHANC@host\""), "{message}");
}

#[test]
fn ad_hoc_node_uses_builtin_defaults() {
    let t = target("STORESCP@[::1]:11112").expect("valid");
    let node = NodeConfig::ad_hoc(&t);
    assert_eq!(node.name, "STORESCP@[::1]:11112");
    assert_eq!(node.ae_title, "STORESCP");
    assert_eq!((node.host.as_str(), node.port), ("::1", 11112));
    assert_eq!(node.pool_name, None);
    assert_eq!(node.pool, PoolSettings::default());
    assert_eq!(node.retry, RetrySettings::default());
    assert_eq!(node.breaker, BreakerSettings::default());
    assert_eq!(node.timeouts, Timeouts::default());
    assert_eq!(node.max_pdu_length, DEFAULT_MAX_PDU_LENGTH);
}

#[test]
fn resolve_target_prefers_nodes_then_ad_hoc() {
    let config = Config::from_json_str(SPEC_EXAMPLE).expect("valid");
    assert_eq!(config.resolve_target("MAIN_PACS").expect("node").port, 4242);
    assert_eq!(config.resolve_target("X@h:1").expect("ad hoc").name, "X@h:1");
    let error = config.resolve_target("MAIN").expect_err("unknown");
    assert!(matches!(error, ConfigError::UnknownNode { .. }));
    assert!(error.to_string().contains("CT_SCANNER, MAIN_PACS"), "{error}");
    let error = config.resolve_target("X@h").expect_err("bad ad hoc");
    assert!(matches!(error, ConfigError::Target { .. }));
    let error = Config::default().resolve_target("MAIN").expect_err("no nodes");
    assert!(error.to_string().contains("no nodes"), "{error}");
}

// ---------------------------------------------------------------- describe

#[test]
fn describe_lists_every_setting_aligned() {
    let config = Config::from_json_str(SPEC_EXAMPLE).expect("valid");
    let text = config.describe();
    for needle in [
        "node MAIN_PACS",
        "node CT_SCANNER",
        "ORTHANC@127.0.0.1:4242",
        "CT01@10.1.2.3:104",
        "main_pacs",
        "modalities",
        "max_idle_time",
        "600 s",
        "acquire_timeout_ms",
        "validate_on_borrow",
        "max_concurrent_opens",
        "leak_threshold_seconds",
        "connect_ms",
        "dimse_ms",
        "exponential_jitter",
        "budget_percent",
        "failure_threshold",
        "open_duration_seconds",
        "half_open_max_calls",
        "max_command_bytes",
        "max_data_set_bytes",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    // Values are aligned: every "key value" line has its value at the same column.
    let columns: std::collections::BTreeSet<usize> = text
        .lines()
        .filter(|line| !line.starts_with("node "))
        .filter_map(|line| {
            let body = line.trim_start();
            let rest = &body[body.find(' ')?..];
            let value = rest.trim_start();
            (!value.is_empty()).then_some(line.len() - value.len())
        })
        .collect();
    assert_eq!(columns.len(), 1, "values not aligned:\n{text}");
    let main_block: Vec<&str> = text.lines().skip_while(|l| !l.starts_with("node MAIN_PACS")).collect();
    // MAIN_PACS: max_attempts 5 from the node.
    let max_attempts = main_block
        .iter()
        .find(|l| l.trim_start().starts_with("max_attempts"))
        .expect("max_attempts line");
    assert!(max_attempts.trim_end().ends_with(" 5"), "{max_attempts}");
}

#[test]
fn field_paths_stay_right_when_a_node_is_named_like_a_field() {
    assert_invalid(
        r#"{"nodes": {"port": {"ae_title": "A", "host": "h"}}}"#,
        "nodes.port.port",
        "missing field",
    );
    assert_invalid(
        r#"{"nodes": {"prot": {"ae_title": "A", "host": "h", "port": 1, "prot": 1}}}"#,
        "nodes.prot.prot",
        "unknown field",
    );
}

#[test]
fn limits_merge_node_over_network_over_defaults() {
    let config = Config::from_json_str(
        r#"{
        "nodes": {
            "A": {"ae_title": "A", "host": "127.0.0.1", "port": 104, "limits": {"max_command_bytes": 8192}},
            "B": {"ae_title": "B", "host": "127.0.0.1", "port": 104}
        },
        "network": {"limits": {"max_command_bytes": 16384, "max_data_set_bytes": 1048576}}
    }"#,
    )
    .unwrap();
    let a = &config.nodes["A"].limits;
    assert_eq!((a.max_command_bytes, a.max_data_set_bytes), (8192, 1_048_576));
    let b = &config.nodes["B"].limits;
    assert_eq!((b.max_command_bytes, b.max_data_set_bytes), (16384, 1_048_576));
    let d = Config::from_json_str(r#"{"nodes": {"C": {"ae_title": "C", "host": "h", "port": 1}}}"#).unwrap();
    assert_eq!(d.nodes["C"].limits, Limits::default());
}

#[test]
fn limits_fields_are_checked() {
    let err = Config::from_json_str(
        r#"{"nodes": {"A": {"ae_title": "A", "host": "h", "port": 1, "limits": {"max_comand_bytes": 1}}}}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("nodes.A.limits.max_comand_bytes"), "{err}");
    let err = Config::from_json_str(r#"{"network": {"limits": {"max_data_set_bytes": 10}}}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("network.limits.max_data_set_bytes"), "{err}");
}

#[test]
fn alert_thresholds_default_and_override() {
    let c = Config::from_json_str(r#"{"nodes": {}}"#).unwrap();
    assert_eq!(c.alerts, AlertSettings::default());
    assert_eq!(c.alerts.acquire_wait_p95, Duration::from_millis(100));
    assert_eq!(c.alerts.failed_health_checks, 3);
    let c = Config::from_json_str(
        r#"{"network": {"alerts": {"acquire_wait_p95_ms": 250, "utilization_percent": 90,
            "error_rate_percent": 5, "error_rate_window_seconds": 60, "circuit_open_seconds": 120,
            "failed_health_checks": 1}}}"#,
    )
    .unwrap();
    assert_eq!(c.alerts.acquire_wait_p95, Duration::from_millis(250));
    assert_eq!(c.alerts.utilization_percent, 90.0);
    assert_eq!(c.alerts.error_rate_percent, 5.0);
    assert_eq!(c.alerts.error_rate_window, Duration::from_secs(60));
    assert_eq!(c.alerts.circuit_open, Duration::from_secs(120));
    assert_eq!(c.alerts.failed_health_checks, 1);
    assert!(c.describe().contains("failed_health_checks"));
    assert_invalid(
        r#"{"network": {"alerts": {"utilization_percent": 120}}}"#,
        "network.alerts.utilization_percent",
        "percentage",
    );
    assert_invalid(
        r#"{"network": {"alerts": {"circuit_open_seconds": 0}}}"#,
        "network.alerts.circuit_open_seconds",
        "at least 1",
    );
    assert_invalid(
        r#"{"network": {"alerts": {"error_rate": 1}}}"#,
        "network.alerts.error_rate",
        "unknown field",
    );
}
