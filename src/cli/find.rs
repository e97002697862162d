//! `pacs-net find`: C-FIND through the node's pool, printed as a table, CSV, or the
//! DICOM JSON model (PS3.18 F.2).

use std::ops::ControlFlow;
use std::sync::Arc;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_object::InMemDicomObject;

use crate::client::Client;
use crate::dimse::{FindQuery, QueryError, QueryKey, QueryLevel, QueryModel, Status, WorklistQuery};

use super::args::FindFormat;
use super::failure;
use super::{error_line, exit};

pub(super) struct FindOpts {
    pub target: String,
    pub model: String,
    pub level: String,
    pub keys: Vec<String>,
    pub format: FindFormat,
    pub limit: Option<u64>,
}

/// What `find` and `worklist` send.
pub(super) enum AnyQuery {
    /// Query/Retrieve C-FIND.
    Find(FindQuery),
    /// Modality Worklist C-FIND.
    Worklist(WorklistQuery),
}

pub(super) async fn find(client: Arc<Client>, opts: FindOpts, query: FindQuery) -> u8 {
    run_query(client, opts, AnyQuery::Find(query)).await
}

/// Run a C-FIND (Query/Retrieve or worklist) and print its matches.
pub(super) async fn run_query(client: Arc<Client>, opts: FindOpts, query: AnyQuery) -> u8 {
    let node = match client.node(&opts.target) {
        Ok(n) => n,
        Err(e) => return super::target_error(e),
    };
    let limit = opts.limit.map(|l| l as usize);
    let mut matches: Vec<InMemDicomObject> = Vec::new();
    let started = std::time::Instant::now();
    let on_match = |m| {
        matches.push(m);
        match limit {
            Some(l) if matches.len() >= l => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    };
    let (outcome, requested) = match &query {
        AnyQuery::Find(q) => (node.find(q, on_match).await, q.keys.clone()),
        AnyQuery::Worklist(q) => (node.worklist(q, on_match).await, q.effective_keys()),
    };
    let requested: Vec<Vec<Tag>> = requested.iter().map(QueryKey::path).collect();
    match outcome.result {
        Ok(o) => {
            if o.status == Status::CANCEL && !o.cancelled {
                error_line!("C-FIND on {} cancelled by the remote", opts.target);
                return exit::FAILED;
            }
            print_matches(&matches, &requested, opts.format);
            if o.pending_warnings > 0 {
                eprintln!(
                    "warning FF01 {}: optional keys not supported by the remote",
                    opts.target
                );
            }
            if o.status.is_warning() {
                eprintln!("warning {} {}: {}", o.status.hex(), opts.target, o.status.meaning());
            }
            exit::OK
        }
        Err(e) => {
            // No result on stdout for a query that failed.
            error_line!(
                "C-FIND on {} failed: {}",
                opts.target,
                failure::describe(&e, outcome.attempts, started.elapsed())
            );
            exit::FAILED
        }
    }
}

/// The query, checked before anything is sent: model and level, keys, and values
/// against their VR.
pub(super) fn build_query(opts: &FindOpts) -> Result<FindQuery, String> {
    let model: QueryModel = opts.model.parse().map_err(|e: QueryError| e.to_string())?;
    let level: QueryLevel = opts.level.parse().map_err(|e: QueryError| e.to_string())?;
    if model == QueryModel::StudyRoot && level == QueryLevel::Patient {
        return Err(
            "--level patient needs the Patient Root model, which the default --model study has no level for: add --model patient".to_string(),
        );
    }
    let keys = parse_keys(&opts.keys)?;
    let query = FindQuery::new(model, level, keys).map_err(|e| e.to_string())?;
    query.identifier().map_err(|e| match e {
        QueryError::BadValue { key, vr, .. } => format!("-k {key}: the value does not fit its VR {vr}"),
        other => other.to_string(),
    })?;
    Ok(query)
}

/// A worklist query, checked before anything is sent (keys and values against their VR).
pub(super) fn build_worklist_query(keys: &[String]) -> Result<WorklistQuery, String> {
    let query = WorklistQuery::new(parse_keys(keys)?);
    crate::dimse::FindRequest::identifier(&query).map_err(|e| match e {
        QueryError::BadValue { key, vr, .. } => format!("-k {key}: the value does not fit its VR {vr}"),
        other => other.to_string(),
    })?;
    Ok(query)
}

/// `-k` keys (dotted for attributes in a sequence), each value checked against its VR.
fn parse_keys(raw: &[String]) -> Result<Vec<QueryKey>, String> {
    let mut keys = Vec::with_capacity(raw.len());
    for k in raw {
        // Errors name the key, never its value (which may be patient data).
        let keyword = k.split_once('=').map_or(k.as_str(), |(key, _)| key);
        let key: QueryKey = k.parse().map_err(|e: QueryError| match e {
            QueryError::BadValue { key, vr, .. } => format!("-k {keyword}: the value does not fit {key} (VR {vr})"),
            other => format!("-k {keyword}: {other}"),
        })?;
        check_value(&key).map_err(|why| {
            format!(
                "-k {keyword}: the value does not fit {} {} (VR {}): {why}",
                key.dotted_name(),
                key.tag,
                key.vr
            )
        })?;
        keys.push(key);
    }
    Ok(keys)
}

/// A query value against its VR (PS3.5 6.2, and PS3.4 C.2.2.2: no wildcards in
/// dates, times, numbers and UIDs; ranges in dates and times).
fn check_value(key: &QueryKey) -> Result<(), &'static str> {
    let v = key.value.as_str();
    if v.is_empty() {
        return Ok(());
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let range = |one: &dyn Fn(&str) -> bool| {
        v.split('\\').all(|part| match part.split_once('-') {
            Some((a, b)) => (a.is_empty() || one(a)) && (b.is_empty() || one(b)) && !(a.is_empty() && b.is_empty()),
            None => one(part),
        })
    };
    let ok = match key.vr {
        VR::US | VR::UL => {
            v.split('\\').all(|x| !x.is_empty() && digits(x))
                && v.split('\\').all(|x| {
                    x.parse::<u64>()
                        .is_ok_and(|n| n <= if key.vr == VR::US { 0xFFFF } else { 0xFFFF_FFFF })
                })
        }
        VR::SS | VR::SL => v.split('\\').all(|x| x.parse::<i64>().is_ok()),
        VR::IS => v.split('\\').all(|x| x.trim().parse::<i64>().is_ok()),
        VR::DS | VR::FL | VR::FD => v.split('\\').all(|x| x.trim().parse::<f64>().is_ok()),
        VR::DA => range(&|d: &str| d.len() == 8 && digits(d)),
        VR::TM => range(&|t: &str| {
            let (hms, frac) = t.split_once('.').unwrap_or((t, "0"));
            (2..=6).contains(&hms.len()) && hms.len() % 2 == 0 && digits(hms) && !frac.is_empty() && digits(frac)
        }),
        VR::DT => range(&|t: &str| {
            let t = t.split(['+', '-']).next().unwrap_or(t);
            let (main, frac) = t.split_once('.').unwrap_or((t, "0"));
            (4..=14).contains(&main.len()) && main.len() % 2 == 0 && digits(main) && digits(frac)
        }),
        VR::UI => v
            .split('\\')
            .all(|u| !u.is_empty() && u.len() <= 64 && u.bytes().all(|b| b.is_ascii_digit() || b == b'.')),
        VR::AS => v.len() == 4 && digits(&v[..3]) && matches!(v.as_bytes()[3], b'D' | b'W' | b'M' | b'Y'),
        _ => true,
    };
    if ok {
        return Ok(());
    }
    Err(match key.vr {
        VR::US => "expected a whole number from 0 to 65535",
        VR::UL => "expected a whole number from 0 to 4294967295",
        VR::SS | VR::SL | VR::IS => "expected a whole number",
        VR::DS | VR::FL | VR::FD => "expected a decimal number",
        VR::DA => "expected a date YYYYMMDD or a range YYYYMMDD-YYYYMMDD",
        VR::TM => "expected a time HHMMSS(.FFFFFF) or a range",
        VR::DT => "expected a date-time YYYYMMDDHHMMSS or a range",
        VR::UI => "expected a UID (digits and dots, at most 64 characters)",
        VR::AS => "expected an age like 045Y",
        _ => "not a valid value",
    })
}

/// A column: the path of an attribute, through the sequences it sits in.
type Column = Vec<Tag>;

/// The user's keys first, in their order, then any other attribute returned;
/// attributes in sequence items are columns of their own (`Seq.Attr`).
fn columns(matches: &[InMemDicomObject], requested: &[Column]) -> Vec<Column> {
    let mut cols: Vec<Column> = Vec::new();
    let skip = |t: Tag| t == tags::QUERY_RETRIEVE_LEVEL || t == tags::SPECIFIC_CHARACTER_SET;
    for path in requested {
        let is_sq = path
            .last()
            .and_then(|t| StandardDataDictionary.by_tag(*t))
            .is_some_and(|e| e.vr().relaxed() == VR::SQ);
        if !is_sq && !path.last().is_some_and(|t| skip(*t)) && !cols.contains(path) {
            cols.push(path.clone());
        }
    }
    for m in matches {
        leaf_paths(m, &mut Vec::new(), &mut |p| {
            if !p.last().is_some_and(|t| skip(*t)) && !cols.iter().any(|c| c == p) {
                cols.push(p.to_vec());
            }
        });
    }
    cols
}

/// Every non-sequence attribute of `obj` and of its items, by path.
fn leaf_paths(obj: &InMemDicomObject, prefix: &mut Vec<Tag>, found: &mut dyn FnMut(&[Tag])) {
    for e in obj.iter() {
        prefix.push(e.header().tag);
        match e.items() {
            Some(items) => {
                for item in items {
                    leaf_paths(item, prefix, found);
                }
            }
            None => found(prefix),
        }
        prefix.pop();
    }
}

fn column_name(path: &[Tag]) -> String {
    path.iter().map(|t| name(*t)).collect::<Vec<_>>().join(".")
}

fn name(tag: Tag) -> String {
    crate::dimse::query::keyword_of(tag)
}

/// The value at `path`; the values of several items are joined with ` | `.
fn value(m: &InMemDicomObject, path: &[Tag]) -> String {
    let mut found = Vec::new();
    values_at(m, path, &mut found);
    found.join(" | ")
}

fn values_at(m: &InMemDicomObject, path: &[Tag], out: &mut Vec<String>) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Ok(e) = m.element(*first) else {
        return;
    };
    if rest.is_empty() {
        if e.items().is_none() {
            out.push(
                e.to_str()
                    .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
                    .unwrap_or_default(),
            );
        }
        return;
    }
    for item in e.items().unwrap_or(&[]) {
        values_at(item, rest, out);
    }
}

fn print_matches(matches: &[InMemDicomObject], requested: &[Column], format: FindFormat) {
    use std::io::Write;
    let text = render_matches(matches, requested, format);
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// The matches as the user asked for them, ready for stdout.
fn render_matches(matches: &[InMemDicomObject], requested: &[Column], format: FindFormat) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    match format {
        FindFormat::Json => {
            let values: Vec<serde_json::Value> = matches.iter().filter_map(|m| dicom_json::to_value(m).ok()).collect();
            match serde_json::to_string_pretty(&values) {
                Ok(s) => {
                    let _ = writeln!(out, "{s}");
                }
                Err(e) => eprintln!("error: cannot encode JSON: {e}"),
            }
        }
        FindFormat::Csv => {
            let cols = columns(matches, requested);
            if cols.is_empty() {
                return out;
            }
            let _ = writeln!(
                out,
                "{}",
                cols.iter()
                    .map(|p| csv_field(&column_name(p)))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            for m in matches {
                let _ = writeln!(
                    out,
                    "{}",
                    cols.iter()
                        .map(|p| csv_field(&value(m, p)))
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
        FindFormat::Table => {
            let cols = columns(matches, requested);
            let rows: Vec<Vec<String>> = matches
                .iter()
                .map(|m| cols.iter().map(|p| value(m, p)).collect())
                .collect();
            let headers: Vec<String> = cols.iter().map(|p| column_name(p)).collect();
            let widths: Vec<usize> = (0..cols.len())
                .map(|i| {
                    rows.iter()
                        .map(|r| display_width(&r[i]))
                        .chain([headers[i].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cells: &[String]| {
                cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(display_width(c)))))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            };
            if !cols.is_empty() {
                let _ = writeln!(out, "{}", line(&headers));
            }
            for r in &rows {
                let _ = writeln!(out, "{}", line(r));
            }
            let _ = writeln!(
                out,
                "({} match{})",
                matches.len(),
                if matches.len() == 1 { "" } else { "es" }
            );
        }
    }
    out
}

/// Terminal columns of `s`: East Asian wide characters take two.
fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let c = u32::from(c);
            let wide = (0x1100..=0x115F).contains(&c)
                || (0x2E80..=0xA4CF).contains(&c)
                || (0xAC00..=0xD7A3).contains(&c)
                || (0xF900..=0xFAFF).contains(&c)
                || (0xFE30..=0xFE4F).contains(&c)
                || (0xFF00..=0xFF60).contains(&c)
                || (0xFFE0..=0xFFE6).contains(&c)
                || (0x20000..=0x3FFFD).contains(&c);
            if wide {
                2
            } else {
                1
            }
        })
        .sum()
}

pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::{DataSetSequence, PrimitiveValue};
    use dicom_core::DataElement;

    #[test]
    fn sequence_attributes_are_dotted_columns() {
        let item = InMemDicomObject::from_element_iter([
            DataElement::new(tags::MODALITY, VR::CS, PrimitiveValue::from("CT")),
            DataElement::new(tags::SCHEDULED_STATION_AE_TITLE, VR::AE, PrimitiveValue::from("CT01")),
        ]);
        let m = InMemDicomObject::from_element_iter([
            DataElement::new(tags::PATIENT_ID, VR::LO, PrimitiveValue::from("P1")),
            DataElement::new(
                tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(vec![item.clone(), item]),
            ),
        ]);
        let requested = vec![vec![tags::SCHEDULED_PROCEDURE_STEP_SEQUENCE, tags::MODALITY]];
        let cols = columns(std::slice::from_ref(&m), &requested);
        let names: Vec<String> = cols.iter().map(|c| column_name(c)).collect();
        assert_eq!(
            names,
            [
                "ScheduledProcedureStepSequence.Modality",
                "PatientID",
                "ScheduledProcedureStepSequence.ScheduledStationAETitle"
            ]
        );
        assert_eq!(value(&m, &cols[0]), "CT | CT");
        assert_eq!(value(&m, &cols[1]), "P1");
        assert_eq!(display_width("山田^太郎"), 9);
    }

    fn fits(k: &str) -> bool {
        check_value(&k.parse::<QueryKey>().unwrap()).is_ok()
    }

    #[test]
    fn query_values_are_checked_against_their_vr() {
        for ok in [
            "Rows=512",
            "StudyDate=20240101",
            "StudyDate=20240101-20241231",
            "StudyDate=-20241231",
            "StudyTime=1200-1300",
            "StudyInstanceUID=1.2.3\\1.2.4",
            "SeriesNumber=3",
            "PatientAge=045Y",
            "PatientName=DOE*",
            "Modality=CT",
            "Rows=",
        ] {
            assert!(fits(ok), "{ok}");
        }
        for bad in [
            "Rows=abc",
            "Rows=70000",
            "StudyDate=yesterday",
            "StudyDate=2024*",
            "StudyDate=-",
            "StudyTime=12h",
            "StudyInstanceUID=1.2.x",
            "SeriesNumber=three",
            "PatientAge=45",
        ] {
            assert!(!fits(bad), "{bad}");
        }
    }
}
