//! The status page: one server-rendered HTML document (no script, no build step),
//! refreshing itself, a row per node with health, reasons, breaker, utilization,
//! acquire p95, a sparkline of the health checks of the last hour (inline SVG),
//! alerts and recommendations. Large type and colour for a wall screen.

use std::fmt::Write;

use super::{NodeStatus, Sample, StatusReport};

/// Escape text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{background:#10151c;color:#e8edf2;font:20px/1.35 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;padding:16px 24px}
h1{font-size:30px;margin:0 0 4px}
.sub{color:#9aa7b4;font-size:16px;margin-bottom:14px}
.overall{display:inline-block;padding:2px 14px;border-radius:6px;font-weight:700;margin-left:12px;font-size:22px;vertical-align:middle}
table{border-collapse:collapse;width:100%}
th{text-align:left;color:#9aa7b4;font-weight:600;font-size:15px;text-transform:uppercase;letter-spacing:.04em;padding:6px 10px;border-bottom:2px solid #2a3542}
td{padding:10px 10px 6px;vertical-align:top}
tbody.node{border-bottom:1px solid #2a3542}
tbody.healthy td:first-child{border-left:10px solid #2fb344}
tbody.degraded td:first-child{border-left:10px solid #f0a020}
tbody.down td:first-child{border-left:10px solid #e5484d}
tr.detail td{padding-top:0;padding-bottom:12px}
.cols{display:grid;grid-template-columns:1fr 1fr 1.4fr;gap:18px}
.label{color:#9aa7b4;font-size:13px;text-transform:uppercase;letter-spacing:.04em}
.name{font-size:26px;font-weight:700}
.addr{color:#9aa7b4;font-size:15px}
.badge{display:inline-block;padding:2px 12px;border-radius:6px;font-weight:700;font-size:20px}
.b-healthy{background:#2fb344;color:#06170a}
.b-degraded{background:#f0a020;color:#1d1300}
.b-down{background:#e5484d;color:#fff}
.b-closed{background:#24303c;color:#b8c4d0}
.b-open{background:#e5484d;color:#fff}
.b-half_open{background:#f0a020;color:#1d1300}
ul{margin:4px 0 0;padding-left:20px;font-size:18px}
.reasons{color:#c8d2dc}
.big{font-size:26px;font-weight:700}
.muted{color:#9aa7b4;font-size:15px}
.alert{color:#ff8b8e;font-weight:600}
.rec b{color:#8ec5ff}
.why{color:#aab6c2;font-size:16px}
svg{display:block;background:#17202a;border-radius:4px}
";

/// The whole page.
pub(super) fn render(report: &StatusReport) -> String {
    let refresh = report.interval_seconds.clamp(5.0, 30.0).round() as u64;
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"refresh\" content=\"{refresh}\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<title>pacs-net: {}</title><style>{STYLE}</style></head><body>",
        report.status.as_str()
    );
    let _ = write!(
        h,
        "<h1>pacs-net nodes<span id=\"overall\" class=\"overall b-{0}\">{0}</span></h1>",
        report.status.as_str()
    );
    let checks = if report.probing {
        format!("health checks every {} s", trim(report.interval_seconds))
    } else {
        format!("sampled every {} s (no health checks)", trim(report.interval_seconds))
    };
    let _ = write!(
        h,
        "<div class=\"sub\">{} node(s) · {checks} · history {} min · this page refreshes every {refresh} s · \
<a style=\"color:#8ec5ff\" href=\"/status\">/status</a> · <a style=\"color:#8ec5ff\" href=\"/metrics\">/metrics</a> · \
<a style=\"color:#8ec5ff\" href=\"/health\">/health</a></div>",
        report.nodes.len(),
        report.history_seconds / 60,
    );
    h.push_str(
        "<table><thead><tr><th>Node</th><th>Health</th><th>Breaker</th><th>Utilization</th>\
<th>Acquire p95</th><th>Health checks (last hour)</th></tr></thead>",
    );
    if report.nodes.is_empty() {
        h.push_str("<tbody><tr><td colspan=\"6\">No nodes in the config.</td></tr></tbody>");
    }
    for (name, node) in &report.nodes {
        row(&mut h, name, node);
    }
    h.push_str("</table></body></html>\n");
    h
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn row(h: &mut String, name: &str, n: &NodeStatus) {
    let health = n.health.as_str();
    let _ = write!(
        h,
        "<tbody class=\"node {health}\" id=\"node-{0}\" data-node=\"{0}\"><tr><td><div class=\"name\">{0}</div><div class=\"addr\">{1} @ {2}</div></td>",
        esc(name),
        esc(&n.ae_title),
        esc(&n.address)
    );
    let _ = write!(h, "<td><span class=\"badge b-{health}\">{health}</span></td>");
    let b = &n.breaker.breaker;
    let state = b.state.as_str();
    let _ = write!(
        h,
        "<td><span class=\"badge b-{state}\">{}</span><div class=\"muted\">{} trip(s), {} retries</div></td>",
        state.replace('_', "-"),
        b.trips,
        n.breaker.retries
    );
    let _ = write!(
        h,
        "<td><div class=\"big\">{:.0} %</div><div class=\"muted\">{} busy of {}{}{}</div></td>",
        n.utilization_percent,
        n.pool.active,
        n.pool.effective_max,
        if n.pool.effective_max < n.pool.max_size {
            format!(" (max_size {})", n.pool.max_size)
        } else {
            String::new()
        },
        if n.pool.waiting > 0 {
            format!(", {} waiting", n.pool.waiting)
        } else {
            String::new()
        }
    );
    let _ = write!(
        h,
        "<td><div class=\"big\">{}</div><div class=\"muted\">{} acquisitions</div></td>",
        if n.pool.wait.samples == 0 {
            "–".to_string()
        } else {
            format!("{:.1} ms", n.pool.wait.p95_ms)
        },
        n.pool.acquisitions
    );
    h.push_str("<td>");
    sparkline(h, &n.history);
    let last = n.history.iter().rev().find_map(|s| s.probe.as_ref());
    let _ = match last {
        Some(p) if p.ok => write!(
            h,
            "<div class=\"muted\">last {}: {:.1} ms</div>",
            if p.kind == "echo" { "C-ECHO" } else { "association" },
            p.latency_ms
        ),
        Some(_) => write!(
            h,
            "<div class=\"alert\">last check failed ({} in a row)</div>",
            n.consecutive_failed_checks.max(1)
        ),
        None => write!(h, "<div class=\"muted\">no health check yet</div>"),
    };
    h.push_str("</td></tr>");
    // What to read and do: reasons, alerts and advice under the numbers, full width.
    if !(n.reasons.is_empty() && n.alerts.is_empty() && n.recommendations.is_empty()) {
        h.push_str("<tr class=\"detail\"><td></td><td colspan=\"5\"><div class=\"cols\">");
        h.push_str("<div><div class=\"label\">Reasons</div>");
        none_or_list(h, "reasons", n.reasons.iter().map(|r| esc(r)));
        h.push_str("</div><div><div class=\"label\">Alerts</div>");
        none_or_list(
            h,
            "alerts",
            n.alerts
                .iter()
                .map(|a| format!("<span class=\"alert\">{}</span>: {}", a.alert.as_str(), esc(&a.message))),
        );
        h.push_str("</div><div><div class=\"label\">Recommendations</div>");
        none_or_list(
            h,
            "rec",
            n.recommendations.iter().map(|r| {
                format!(
                    "<b>{}</b>: {}<div class=\"why\">{}</div>",
                    esc(&r.field),
                    esc(&r.change),
                    esc(&r.why)
                )
            }),
        );
        h.push_str("</div></div></td></tr>");
    }
    h.push_str("</tbody>");
}

fn none_or_list(h: &mut String, class: &str, items: impl Iterator<Item = String>) {
    let mut items = items.peekable();
    if items.peek().is_none() {
        h.push_str("<div class=\"muted\">none</div>");
    } else {
        list(h, class, items);
    }
}

fn list(h: &mut String, class: &str, items: impl Iterator<Item = String>) {
    let mut any = false;
    for item in items {
        if !any {
            let _ = write!(h, "<ul class=\"{class}\">");
            any = true;
        }
        let _ = write!(h, "<li>{item}</li>");
    }
    if any {
        h.push_str("</ul>");
    }
}

/// Health-check latency over the history: a line of the successful checks, a red
/// mark at every failed one; the scale is printed beneath. A column of pixels holds
/// the slowest check that falls in it, so a long history never makes a long page.
fn sparkline(h: &mut String, history: &[Sample]) {
    const W: f64 = 260.0;
    const H: f64 = 48.0;
    let n = history.len().max(2) as f64 - 1.0;
    // Pixel column -> (slowest successful check, any failed).
    let mut columns: std::collections::BTreeMap<u32, (Option<f64>, bool)> = std::collections::BTreeMap::new();
    for (i, s) in history.iter().enumerate() {
        let Some(p) = &s.probe else { continue };
        let col = (i as f64 / n * (W - 4.0)).round() as u32;
        let entry = columns.entry(col).or_default();
        if p.ok {
            entry.0 = Some(entry.0.map_or(p.latency_ms, |m: f64| m.max(p.latency_ms)));
        } else {
            entry.1 = true;
        }
    }
    let max = columns.values().filter_map(|c| c.0).fold(1.0_f64, f64::max);
    let _ = write!(
        h,
        "<svg class=\"spark\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"health check latency, max {max:.1} ms\">"
    );
    let points: Vec<String> = columns
        .iter()
        .filter_map(|(col, c)| {
            c.0.map(|ms| {
                let x = f64::from(*col) + 2.0;
                let y = H - 3.0 - ms / max * (H - 8.0);
                format!("{x:.1},{y:.1}")
            })
        })
        .collect();
    if !points.is_empty() {
        let _ = write!(
            h,
            "<polyline fill=\"none\" stroke=\"#5cc8ff\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    for (col, _) in columns.iter().filter(|(_, c)| c.1) {
        let _ = write!(
            h,
            "<rect x=\"{:.1}\" y=\"2\" width=\"3\" height=\"{}\" fill=\"#e5484d\"/>",
            f64::from(*col) + 0.5,
            H - 4.0
        );
    }
    if points.is_empty() {
        h.push_str("</svg>");
    } else {
        let _ = write!(h, "</svg><div class=\"muted\">max {max:.1} ms</div>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::Probe;

    fn sample(i: u64, ok: bool) -> Sample {
        Sample {
            at_ms: i * 1000,
            probe: Some(Probe {
                kind: "echo",
                ok,
                latency_ms: 2.0 + (i % 7) as f64,
                error: (!ok).then(|| "refused <&>".to_string()),
            }),
            operations: 1,
            failures: u64::from(!ok),
            active: 0,
            effective_max: 4,
            waiting: 0,
            acquire_p95_ms: 0.0,
            breaker: "closed",
            counters: Default::default(),
        }
    }

    #[test]
    fn the_sparkline_stays_small_for_a_long_history() {
        let history: Vec<Sample> = (0..3600).map(|i| sample(i, i % 500 != 0)).collect();
        let mut h = String::new();
        sparkline(&mut h, &history);
        assert!(h.len() < 8 * 1024, "{} bytes", h.len());
        assert_eq!(
            h.matches("<rect").count(),
            8,
            "one mark per failure (3600 / 500, rounded up)"
        );
        assert!(h.contains("max 8.0 ms"), "{h}");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
