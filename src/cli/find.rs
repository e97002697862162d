//! `pacs-net find`: C-FIND through the node's pool, printed as a table, CSV, or the
//! DICOM JSON model (PS3.18 F.2).

use std::ops::ControlFlow;
use std::sync::Arc;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::Tag;
use dicom_dictionary_std::{tags, StandardDataDictionary};
use dicom_object::InMemDicomObject;

use crate::client::Client;
use crate::dimse::{FindQuery, QueryKey, QueryLevel, QueryModel, Status};

use super::args::FindFormat;
use super::exit;

pub(super) struct FindOpts {
    pub target: String,
    pub model: String,
    pub level: String,
    pub keys: Vec<String>,
    pub format: FindFormat,
    pub limit: Option<u64>,
}

pub(super) async fn find(client: Arc<Client>, opts: FindOpts) -> u8 {
    let query = match build_query(&opts) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let node = match client.node(&opts.target) {
        Ok(n) => n,
        Err(e) => return super::target_error(e),
    };
    let limit = opts.limit.map(|l| l as usize);
    let mut matches: Vec<InMemDicomObject> = Vec::new();
    let outcome = node
        .find(&query, |m| {
            matches.push(m);
            match limit {
                Some(l) if matches.len() >= l => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        })
        .await;
    print_matches(&matches, opts.format);
    match outcome.result {
        Ok(o) => {
            if o.pending_warnings > 0 {
                eprintln!(
                    "warning FF01 {}: optional keys not supported by the remote",
                    opts.target
                );
            }
            if o.status.is_warning() {
                eprintln!("warning {} {}: {}", o.status.hex(), opts.target, o.status.meaning());
            }
            if o.status == Status::CANCEL && !o.cancelled {
                eprintln!("error: C-FIND cancelled by the remote");
                return exit::FAILED;
            }
            exit::OK
        }
        Err(e) => {
            eprintln!(
                "error: C-FIND on {} failed after {} attempt(s): {e}",
                opts.target, outcome.attempts
            );
            exit::FAILED
        }
    }
}

fn build_query(opts: &FindOpts) -> Result<FindQuery, crate::dimse::QueryError> {
    let model: QueryModel = opts.model.parse()?;
    let level: QueryLevel = opts.level.parse()?;
    let keys = opts
        .keys
        .iter()
        .map(|k| k.parse::<QueryKey>())
        .collect::<Result<Vec<_>, _>>()?;
    FindQuery::new(model, level, keys)
}

fn columns(matches: &[InMemDicomObject]) -> Vec<Tag> {
    let mut cols: Vec<Tag> = Vec::new();
    for m in matches {
        for e in m.iter() {
            let t = e.header().tag;
            if t != tags::QUERY_RETRIEVE_LEVEL && t != tags::SPECIFIC_CHARACTER_SET && !cols.contains(&t) {
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

fn print_matches(matches: &[InMemDicomObject], format: FindFormat) {
    match format {
        FindFormat::Json => {
            let values: Vec<serde_json::Value> = matches.iter().filter_map(|m| dicom_json::to_value(m).ok()).collect();
            match serde_json::to_string_pretty(&values) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("error: cannot encode JSON: {e}"),
            }
        }
        FindFormat::Csv => {
            let cols = columns(matches);
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
            let cols = columns(matches);
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

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
