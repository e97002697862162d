//! A failed operation said for people: which timeout expired (and the time spent
//! over every attempt), the root cause behind an open circuit, and one line for a
//! cause shared by many operations.

use std::time::Duration;

use crate::association::AssociationError;
use crate::client::{is_unknown_host, OpError, OperationError};
use crate::resilience::ExecError;

/// The words for one attempt's error.
pub(super) fn op_error(e: &OpError) -> String {
    match e {
        OpError::Association(a) => association_error(a),
        OpError::Interrupted { matches, source } => {
            format!("interrupted after {matches} matches: {}", op_error(source))
        }
        other => other.to_string(),
    }
}

fn association_error(e: &AssociationError) -> String {
    match e {
        AssociationError::ConnectTimeout { addr, after } => format!(
            "connect timeout ({}, --connect-timeout-ms) expired connecting to {addr}",
            secs(*after)
        ),
        AssociationError::AcseTimeout { addr, after } => format!(
            "ACSE timeout ({}, --acse-timeout-ms) expired: {addr} did not answer the association request",
            secs(*after)
        ),
        AssociationError::DimseTimeout(after) => format!(
            "DIMSE timeout ({}, --dimse-timeout-ms) expired waiting for the response; association aborted",
            secs(*after)
        ),
        AssociationError::Connect { addr, source } if source.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused by {addr}")
        }
        AssociationError::Connect { addr, source } if is_unknown_host(source) => {
            let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
            format!("unknown host {host}: the name does not resolve")
        }
        other => other.to_string(),
    }
}

fn is_timeout(e: &OpError) -> bool {
    matches!(
        e,
        OpError::Association(
            AssociationError::ConnectTimeout { .. }
                | AssociationError::AcseTimeout { .. }
                | AssociationError::DimseTimeout(_)
        ) | OpError::Deadline { .. }
    )
}

/// A whole operation's failure: the last error, and for a timeout after retries,
/// the attempts and total time spent.
pub(super) fn describe(e: &OperationError, attempts: u32, elapsed: Duration) -> String {
    let spent = || format!("{attempts} attempts in {}", secs(elapsed));
    match e {
        ExecError::Operation(last) if is_timeout(last) && attempts > 1 => {
            format!("{}; gave up after {}", op_error(last), spent())
        }
        ExecError::Operation(last) if is_timeout(last) => {
            format!("{}; gave up after {}", op_error(last), secs(elapsed))
        }
        ExecError::Operation(last) => op_error(last),
        ExecError::CircuitOpen { open, last } => {
            let mut s = format!(
                "circuit open after {} consecutive failures (next probe in {})",
                open.consecutive_failures,
                secs(open.retry_in)
            );
            if let Some(last) = last {
                s.push_str(&format!(": {}", op_error(last)));
            }
            s
        }
        ExecError::BudgetExhausted { attempts, last, .. } => {
            format!("retry budget exhausted after {attempts} attempts: {}", op_error(last))
        }
        ExecError::DeadlineExceeded { attempts, last } => {
            format!("deadline exceeded after {attempts} attempts: {}", op_error(last))
        }
    }
}

/// Failures fast-failed by an open circuit with nothing of their own to say: the
/// caller reports them once, with the root cause.
pub(super) fn is_bare_circuit_open(e: &OperationError) -> bool {
    matches!(e, ExecError::CircuitOpen { last: None, .. })
}

/// `circuit open after 5 consecutive failures`, for an error the open circuit
/// refused.
pub(super) fn circuit_words(e: &OperationError) -> Option<String> {
    match e {
        ExecError::CircuitOpen { open, .. } => Some(format!(
            "circuit open after {} consecutive failures",
            open.consecutive_failures
        )),
        _ => None,
    }
}

/// The cause worth naming for a failure (for the root cause of an open circuit):
/// the last error of an attempt, if one was made.
pub(super) fn root_cause(e: &OperationError) -> Option<String> {
    e.last_error().map(op_error)
}

/// `0.8 s`, `48.2 s`, `250 ms`: rounded for people.
pub(super) fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{s:.1} s")
    }
}

/// `1 file`, `3 files`.
pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
