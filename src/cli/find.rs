//! `pacs-net find`: C-FIND through the node's pool, printed as a table, CSV, or the
//! DICOM JSON model (PS3.18 F.2).

use std::ops::ControlFlow;
use std::sync::Arc;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_object::InMemDicomObject;

use crate::client::Client;
use crate::dimse::{FindQuery, QueryError, QueryKey, QueryLevel, QueryModel, Status};

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

pub(super) async fn find(client: Arc<Client>, opts: FindOpts, query: FindQuery) -> u8 {
    let node = match client.node(&opts.target) {
        Ok(n) => n,
        Err(e) => return super::target_error(e),
    };
    let limit = opts.limit.map(|l| l as usize);
    let mut matches: Vec<InMemDicomObject> = Vec::new();
    let started = std::time::Instant::now();
    let outcome = node
        .find(&query, |m| {
            matches.push(m);
            match limit {
                Some(l) if matches.len() >= l => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        })
        .await;
    let requested: Vec<Tag> = query.keys.iter().map(|k| k.tag).collect();
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
    let mut keys = Vec::with_capacity(opts.keys.len());
    for k in &opts.keys {
        // Errors name the key, never its value (which may be patient data).
        let keyword = k.split_once('=').map_or(k.as_str(), |(key, _)| key);
        let key: QueryKey = k.parse().map_err(|e: QueryError| match e {
            QueryError::BadValue { key, vr, .. } => format!("-k {keyword}: the value does not fit {key} (VR {vr})"),
            other => format!("-k {keyword}: {other}"),
        })?;
        check_value(&key).map_err(|why| {
            format!(
                "-k {keyword}: the value does not fit {} {} (VR {}): {why}",
                name(key.tag),
                key.tag,
                key.vr
            )
        })?;
        keys.push(key);
    }
    let query = FindQuery::new(model, level, keys).map_err(|e| e.to_string())?;
    query.identifier().map_err(|e| match e {
        QueryError::BadValue { key, vr, .. } => format!("-k {key}: the value does not fit its VR {vr}"),
        other => other.to_string(),
    })?;
    Ok(query)
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

/// The user's keys first, in their order, then any other attribute returned.
fn columns(matches: &[InMemDicomObject], requested: &[Tag]) -> Vec<Tag> {
    let mut cols: Vec<Tag> = Vec::new();
    let skip = |t: Tag| t == tags::QUERY_RETRIEVE_LEVEL || t == tags::SPECIFIC_CHARACTER_SET;
    for t in requested {
        if !skip(*t) && !cols.contains(t) {
            cols.push(*t);
        }
    }
    for m in matches {
        for e in m.iter() {
            let t = e.header().tag;
            if !skip(t) && !cols.contains(&t) {
                cols.push(t);
            }
        }
    }
    cols
}

fn name(tag: Tag) -> String {
    StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.alias().to_string())
        .unwrap_or_else(|| format!("{tag}"))
}

fn value(m: &InMemDicomObject, tag: Tag) -> String {
    m.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok().map(|s| s.trim_end_matches(['\0', ' ']).to_string()))
        .unwrap_or_default()
}

fn print_matches(matches: &[InMemDicomObject], requested: &[Tag], format: FindFormat) {
    match format {
        FindFormat::Json => {
            let values: Vec<serde_json::Value> = matches.iter().filter_map(|m| dicom_json::to_value(m).ok()).collect();
            match serde_json::to_string_pretty(&values) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("error: cannot encode JSON: {e}"),
            }
        }
        FindFormat::Csv => {
            let cols = columns(matches, requested);
            if cols.is_empty() {
                return;
            }
            println!(
                "{}",
                cols.iter().map(|t| csv_field(&name(*t))).collect::<Vec<_>>().join(",")
            );
            for m in matches {
                println!(
                    "{}",
                    cols.iter()
                        .map(|t| csv_field(&value(m, *t)))
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
        FindFormat::Table => {
            let cols = columns(matches, requested);
            let rows: Vec<Vec<String>> = matches
                .iter()
                .map(|m| cols.iter().map(|t| value(m, *t)).collect())
                .collect();
            let headers: Vec<String> = cols.iter().map(|t| name(*t)).collect();
            let widths: Vec<usize> = (0..cols.len())
                .map(|i| {
                    rows.iter()
                        .map(|r| r[i].chars().count())
                        .chain([headers[i].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |cells: &[String]| {
                cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| format!("{c:<w$}", w = *w))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            };
            if !cols.is_empty() {
                println!("{}", line(&headers));
            }
            for r in &rows {
                println!("{}", line(r));
            }
            println!(
                "({} match{})",
                matches.len(),
                if matches.len() == 1 { "" } else { "es" }
            );
        }
    }
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
