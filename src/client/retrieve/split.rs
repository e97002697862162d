//! A retrieve spread over several associations ([`RetrieveRequest::concurrency`]
//! above 1), one series per part. A PACS answers a C-GET or C-MOVE one
//! sub-operation at a time: it reads an instance, sends it, waits for its C-STORE
//! response, then the next. Over one association that is a chain of round trips
//! and file writes on both sides; over several, the PACS works on several series
//! at once (Orthanc and DCMTK serve each association on a thread of their own).
//!
//! So the series are listed first (one C-FIND at SERIES level with the query's
//! keys), and each is one SERIES-level C-GET / C-MOVE naming it by its Study and
//! Series Instance UIDs, up to `concurrency` at once, largest first, each through
//! the pool, breaker and retry policy as any retrieve. Their events go to the one
//! sink, their counts are summed (a series not yet started counts as remaining),
//! and their outcomes make one: the first failure, else a cancel, else a warning,
//! else success. A part that fails does not stop the others.
//!
//! Parts are whole series, not lists of SOP Instance UIDs: every PACS retrieves a
//! series by its UID quickly, while UID lists are optional matching that some look
//! up one UID at a time (Orthanc 1.10 spends about 1 ms per UID, more than it takes
//! to send the instance). An IMAGE-level retrieve, a PACS that does not list the
//! series, or a selection of one series runs as one retrieve with the query as
//! given.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};

use dicom_dictionary_std::tags;
use futures::StreamExt;
use parking_lot::Mutex;

use crate::association::uids::is_valid_uid;
use crate::association::Profile;
use crate::dimse::{
    FindQuery, FnSink, QueryKey, QueryLevel, QueryModel, RetrieveEvent, RetrieveOutcome, RetrieveSink, Status,
    SubOperations,
};

use super::super::node::Node;
use super::super::outcome::{OpOptions, Outcome};
use super::{RetrieveReport, RetrieveRequest};

/// A series as the listing found it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    /// Patient ID (Patient Root only: the retrieve names it above the study).
    patient: Option<String>,
    study: String,
    series: String,
    /// Number of Series Related Instances, where the PACS gave it.
    instances: Option<u16>,
}

impl Node {
    /// [`Node::retrieve_into`] for `request.concurrency` above 1.
    pub(super) async fn retrieve_split<S: RetrieveSink>(
        &self,
        request: &RetrieveRequest,
        opts: &OpOptions,
        sink: S,
    ) -> RetrieveReport {
        let parts = match request.query.level {
            QueryLevel::Image => Vec::new(),
            _ => match self.list_series(&request.query, opts).await {
                Some(listed) => plan_parts(request, listed),
                None => Vec::new(),
            },
        };
        let profile = self.retrieve_profile(request, opts).await;
        if parts.len() <= 1 {
            return self.retrieve_one(request, profile, opts, sink).await;
        }
        tracing::debug!(
            series = parts.len(),
            concurrency = request.concurrency,
            op = request.kind.name(),
            "retrieve spread over associations, one series each"
        );
        let merge = Merge {
            sink: tokio::sync::Mutex::new(sink),
            counts: Mutex::new(parts.iter().map(Part::initial_counts).collect()),
            sizes: parts.iter().map(|p| p.instances).collect(),
            stopped: AtomicBool::new(false),
        };
        let mut reports: Vec<Option<RetrieveReport>> = (0..parts.len()).map(|_| None).collect();
        {
            let mut running = futures::stream::FuturesUnordered::new();
            let mut next = parts.iter().enumerate();
            loop {
                while running.len() < request.concurrency {
                    let Some((index, part)) = next.next() else { break };
                    running.push(self.run_part(&merge, index, part, profile.clone(), opts));
                }
                match running.next().await {
                    Some((index, report)) => reports[index] = report,
                    None => break,
                }
            }
        }
        let counts = merge.counts.into_inner();
        combine(&parts, reports, &counts)
    }

    /// One part, unless the caller has stopped the retrieve before it began.
    async fn run_part<S: RetrieveSink>(
        &self,
        merge: &Merge<S>,
        index: usize,
        part: &Part,
        profile: Profile,
        opts: &OpOptions,
    ) -> (usize, Option<RetrieveReport>) {
        if merge.is_closed().await {
            return (index, None);
        }
        let sink = PartSink { merge, index };
        (index, Some(self.retrieve_one(&part.request, profile, opts, sink).await))
    }

    /// Every series `query` selects, from one C-FIND at SERIES level; `None` when
    /// the PACS does not answer it, or answers a match without its UIDs.
    async fn list_series(&self, query: &FindQuery, opts: &OpOptions) -> Option<Vec<Listed>> {
        let mut keys: Vec<QueryKey> = query.keys.iter().filter(|k| !k.value.is_empty()).cloned().collect();
        let mut wanted = vec![
            tags::STUDY_INSTANCE_UID,
            tags::SERIES_INSTANCE_UID,
            tags::NUMBER_OF_SERIES_RELATED_INSTANCES,
        ];
        if query.model == QueryModel::PatientRoot {
            wanted.insert(0, tags::PATIENT_ID);
        }
        for tag in wanted {
            if !keys.iter().any(|k| k.tag == tag && k.sequences.is_empty()) {
                keys.push(QueryKey::new(tag, "").ok()?);
            }
        }
        let find = FindQuery::new(query.model, QueryLevel::Series, keys).ok()?;
        let patient_root = query.model == QueryModel::PatientRoot;
        let listed = Mutex::new((Vec::new(), true));
        let out = self
            .find_advisory(
                &find,
                opts,
                FnSink(|m: dicom_object::InMemDicomObject| {
                    let text = |tag| {
                        m.element(tag)
                            .ok()
                            .and_then(|e| e.to_str().ok())
                            .map(|s| s.trim_end_matches(['\0', ' ']).trim().to_string())
                    };
                    let single = |tag| text(tag).filter(|s| !s.is_empty() && !s.contains('\\'));
                    let uid = |tag| single(tag).filter(|s| is_valid_uid(s));
                    let patient = if patient_root { single(tags::PATIENT_ID) } else { None };
                    let instances = text(tags::NUMBER_OF_SERIES_RELATED_INSTANCES).and_then(|n| n.parse().ok());
                    let mut l = listed.lock();
                    match (uid(tags::STUDY_INSTANCE_UID), uid(tags::SERIES_INSTANCE_UID)) {
                        (Some(study), Some(series)) if patient.is_some() || !patient_root => {
                            l.0.push(Listed {
                                patient,
                                study,
                                series,
                                instances,
                            });
                            ControlFlow::Continue(())
                        }
                        _ => {
                            l.1 = false;
                            ControlFlow::Break(())
                        }
                    }
                }),
            )
            .await;
        let (listed, complete) = listed.into_inner();
        match out.result {
            Ok(_) if complete && !listed.is_empty() => Some(listed),
            Ok(_) => {
                tracing::debug!(
                    matches = listed.len(),
                    complete,
                    "the PACS listed no series with their UIDs; one retrieve"
                );
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "C-FIND at SERIES level failed; one retrieve");
                None
            }
        }
    }
}

/// One part: the retrieve of one series, and how many instances it holds (0 when
/// the PACS did not say).
struct Part {
    request: RetrieveRequest,
    instances: u16,
}

impl Part {
    fn initial_counts(&self) -> SubOperations {
        SubOperations {
            remaining: Some(self.instances),
            ..SubOperations::default()
        }
    }
}

/// One SERIES-level retrieve per listed series (each once), largest first so that
/// the last to finish is a small one.
fn plan_parts(request: &RetrieveRequest, mut listed: Vec<Listed>) -> Vec<Part> {
    let mut seen = HashSet::new();
    listed.retain(|l| seen.insert((l.patient.clone(), l.study.clone(), l.series.clone())));
    listed.sort_by_key(|l| std::cmp::Reverse(l.instances.unwrap_or(0)));
    let mut parts = Vec::with_capacity(listed.len());
    for l in listed {
        let mut keys = Vec::new();
        if let (QueryModel::PatientRoot, Some(p)) = (request.query.model, &l.patient) {
            keys.push((tags::PATIENT_ID, p.as_str()));
        }
        keys.push((tags::STUDY_INSTANCE_UID, l.study.as_str()));
        keys.push((tags::SERIES_INSTANCE_UID, l.series.as_str()));
        let keys: Option<Vec<QueryKey>> = keys.into_iter().map(|(t, v)| QueryKey::new(t, v).ok()).collect();
        let Some(query) = keys.and_then(|k| FindQuery::new(request.query.model, QueryLevel::Series, k).ok()) else {
            return Vec::new();
        };
        parts.push(Part {
            request: RetrieveRequest {
                query,
                kind: request.kind.clone(),
                out_dir: request.out_dir.clone(),
                concurrency: 1,
            },
            instances: l.instances.unwrap_or(0),
        });
    }
    parts
}

/// What the parts share: the caller's sink, each part's latest counts, and
/// whether the caller has had enough.
struct Merge<S> {
    sink: tokio::sync::Mutex<S>,
    counts: Mutex<Vec<SubOperations>>,
    /// Instances each part names.
    sizes: Vec<u16>,
    stopped: AtomicBool,
}

impl<S: RetrieveSink> Merge<S> {
    async fn is_closed(&self) -> bool {
        self.stopped.load(Ordering::SeqCst) || self.sink.lock().await.is_closed()
    }

    /// Part `index` reported `c`: the counts of the whole retrieve.
    fn progress(&self, index: usize, c: SubOperations) -> SubOperations {
        let instances = self.sizes.get(index).copied().unwrap_or(0);
        let mut counts = self.counts.lock();
        let done = c.completed.saturating_add(c.failed).saturating_add(c.warning);
        if let Some(slot) = counts.get_mut(index) {
            *slot = SubOperations {
                remaining: Some(c.remaining.unwrap_or(instances.saturating_sub(done))),
                ..c
            };
        }
        sum(counts.iter().copied())
    }
}

fn sum(counts: impl Iterator<Item = SubOperations>) -> SubOperations {
    counts.fold(
        SubOperations {
            remaining: Some(0),
            ..SubOperations::default()
        },
        |a, c| SubOperations {
            remaining: Some(a.remaining.unwrap_or(0).saturating_add(c.remaining.unwrap_or(0))),
            completed: a.completed.saturating_add(c.completed),
            failed: a.failed.saturating_add(c.failed),
            warning: a.warning.saturating_add(c.warning),
        },
    )
}

/// One part's view of the shared sink: its pending counts become the whole
/// retrieve's; a `Break` from the caller stops every part.
struct PartSink<'m, S> {
    merge: &'m Merge<S>,
    index: usize,
}

impl<S: RetrieveSink> RetrieveSink for PartSink<'_, S> {
    fn deliver(&mut self, event: RetrieveEvent) -> impl std::future::Future<Output = ControlFlow<()>> + Send {
        let merge = self.merge;
        let index = self.index;
        async move {
            let event = match event {
                RetrieveEvent::Progress(c) => RetrieveEvent::Progress(merge.progress(index, c)),
                e => e,
            };
            let flow = merge.sink.lock().await.deliver(event).await;
            if flow.is_break() {
                merge.stopped.store(true, Ordering::SeqCst);
            }
            flow
        }
    }

    fn is_closed(&self) -> bool {
        self.merge.stopped.load(Ordering::SeqCst) || self.merge.sink.try_lock().is_ok_and(|s| s.is_closed())
    }
}

/// How bad a final status is: failure, then cancel, then warning, then success.
fn severity(s: Status) -> u8 {
    if s.is_failure() {
        3
    } else if s == Status::CANCEL {
        2
    } else if s.is_warning() {
        1
    } else {
        0
    }
}

/// The parts' reports as one: counts summed (a part that never had a final
/// response counts with its last pending counts, one never started as remaining),
/// the worst final status, every failed UID, and the first failure as the result.
fn combine(parts: &[Part], reports: Vec<Option<RetrieveReport>>, counts: &[SubOperations]) -> RetrieveReport {
    let mut merged = RetrieveOutcome::default();
    let mut part_counts = Vec::with_capacity(parts.len());
    let mut first_error = None;
    let mut attempts = 0;
    let mut last_status = None;
    for (i, report) in reports.into_iter().enumerate() {
        let latest = counts.get(i).copied().unwrap_or_else(|| parts[i].initial_counts());
        let Some(RetrieveReport { outcome, last_response }) = report else {
            // Never started: the caller stopped the retrieve.
            merged.cancelled = true;
            if severity(Status::CANCEL) > severity(merged.status) {
                merged.status = Status::CANCEL;
            }
            part_counts.push(parts[i].initial_counts());
            continue;
        };
        attempts = attempts.max(outcome.attempts);
        last_status = outcome.last_status.or(last_status);
        match last_response {
            Some(r) => {
                part_counts.push(SubOperations {
                    remaining: Some(r.sub_operations.remaining.unwrap_or(0)),
                    ..r.sub_operations
                });
                if severity(r.status) > severity(merged.status) {
                    merged.status = r.status;
                    merged.error_comment = r.error_comment.clone();
                }
                merged.failed_sop_instance_uids.extend(r.failed_sop_instance_uids);
                merged.cancelled |= r.cancelled;
                merged.lost_after_cancel |= r.lost_after_cancel;
                merged.received += r.received;
                merged.written += r.written;
                merged.bytes += r.bytes;
            }
            None => part_counts.push(latest),
        }
        if let Err(e) = outcome.result {
            first_error.get_or_insert(e);
        }
    }
    merged.sub_operations = sum(part_counts.into_iter());
    let outcome = Outcome {
        result: match first_error {
            Some(e) => Err(e),
            None => Ok(merged.clone()),
        },
        attempts,
        last_status,
    };
    RetrieveReport {
        outcome,
        last_response: Some(merged),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::OpError;
    use crate::resilience::ExecError;

    fn request(model: QueryModel) -> RetrieveRequest {
        let keys = vec![QueryKey::new(tags::STUDY_INSTANCE_UID, "1.2.3").unwrap()];
        let query = FindQuery::new(model, QueryLevel::Study, keys).unwrap();
        RetrieveRequest::get(query, std::path::Path::new("out")).with_concurrency(4)
    }

    fn listed(series: &str, instances: Option<u16>) -> Listed {
        Listed {
            patient: Some("PID".into()),
            study: "1.2.3".into(),
            series: series.into(),
            instances,
        }
    }

    fn key(part: &Part, tag: dicom_core::Tag) -> Option<String> {
        part.request
            .query
            .keys
            .iter()
            .find(|k| k.tag == tag)
            .map(|k| k.value.clone())
    }

    #[test]
    fn parts_are_whole_series_each_once_largest_first() {
        let list = vec![
            listed("1.2.3.1", Some(2)),
            listed("1.2.3.2", Some(300)),
            listed("1.2.3.1", Some(2)),
            listed("1.2.3.3", None),
        ];
        let parts = plan_parts(&request(QueryModel::StudyRoot), list.clone());
        let series: Vec<_> = parts
            .iter()
            .map(|p| key(p, tags::SERIES_INSTANCE_UID).unwrap())
            .collect();
        assert_eq!(series, ["1.2.3.2", "1.2.3.1", "1.2.3.3"]);
        for p in &parts {
            assert_eq!(p.request.query.level, QueryLevel::Series);
            assert_eq!(p.request.concurrency, 1);
            assert_eq!(key(p, tags::STUDY_INSTANCE_UID).as_deref(), Some("1.2.3"));
            assert_eq!(key(p, tags::PATIENT_ID), None, "Study Root names no patient");
        }
        assert_eq!(parts[0].initial_counts().remaining, Some(300));
        // Patient Root names the patient above the study.
        let parts = plan_parts(&request(QueryModel::PatientRoot), list);
        assert_eq!(key(&parts[0], tags::PATIENT_ID).as_deref(), Some("PID"));
    }

    fn outcome(status: u16, completed: u16, failed: u16, failed_uids: &[&str]) -> RetrieveOutcome {
        RetrieveOutcome {
            status: Status(status),
            sub_operations: SubOperations {
                remaining: None,
                completed,
                failed,
                warning: 0,
            },
            failed_sop_instance_uids: failed_uids.iter().map(|s| s.to_string()).collect(),
            error_comment: None,
            cancelled: false,
            lost_after_cancel: false,
            received: usize::from(completed + failed),
            written: usize::from(completed),
            bytes: 10 * u64::from(completed),
        }
    }

    fn report(result: Result<RetrieveOutcome, OpError>, last: Option<RetrieveOutcome>) -> Option<RetrieveReport> {
        Some(RetrieveReport {
            outcome: Outcome {
                result: result.map_err(ExecError::Operation),
                attempts: 1,
                last_status: last.as_ref().map(|l| l.status),
            },
            last_response: last,
        })
    }

    fn parts(sizes: &[u16]) -> Vec<Part> {
        sizes
            .iter()
            .map(|&instances| Part {
                request: request(QueryModel::StudyRoot),
                instances,
            })
            .collect()
    }

    #[test]
    fn counts_add_up_and_the_worst_status_wins() {
        let parts = parts(&[3, 2, 4]);
        let counts: Vec<_> = parts.iter().map(Part::initial_counts).collect();
        let ok = outcome(0x0000, 3, 0, &[]);
        let partial = outcome(0xB000, 1, 1, &["1.2.3.9"]);
        let merged = combine(
            &parts,
            vec![
                report(Ok(ok.clone()), Some(ok)),
                report(Ok(partial.clone()), Some(partial)),
                None,
            ],
            &counts,
        );
        let last = merged.last_response.unwrap();
        // The third never started (the caller stopped): cancelled, its 4 remaining.
        assert_eq!(last.status, Status::CANCEL);
        assert!(last.cancelled);
        assert_eq!(
            last.sub_operations,
            SubOperations {
                remaining: Some(4),
                completed: 4,
                failed: 1,
                warning: 0
            }
        );
        assert_eq!(last.failed_sop_instance_uids, ["1.2.3.9"]);
        assert_eq!((last.received, last.written, last.bytes), (5, 4, 40));
        assert!(merged.outcome.result.is_ok());
    }

    #[test]
    fn a_failed_part_fails_the_whole_and_keeps_its_last_counts() {
        let parts = parts(&[3, 5]);
        let mut counts: Vec<_> = parts.iter().map(Part::initial_counts).collect();
        // The second part had 2 done, 3 to go, when its association broke.
        counts[1] = SubOperations {
            remaining: Some(3),
            completed: 2,
            failed: 0,
            warning: 0,
        };
        let ok = outcome(0x0000, 3, 0, &[]);
        let broken = OpError::Status {
            status: Status(0xA702),
            comment: None,
        };
        let merged = combine(
            &parts,
            vec![report(Ok(ok.clone()), Some(ok)), report(Err(broken), None)],
            &counts,
        );
        assert!(matches!(
            merged.outcome.result,
            Err(ExecError::Operation(OpError::Status {
                status: Status(0xA702),
                ..
            }))
        ));
        let last = merged.last_response.unwrap();
        assert_eq!(last.sub_operations.completed, 5);
        assert_eq!(last.sub_operations.remaining, Some(3));
        // A failure status from a final response outranks success.
        let parts2 = self::parts(&[1, 1]);
        let counts2: Vec<_> = parts2.iter().map(Part::initial_counts).collect();
        let ok = outcome(0x0000, 1, 0, &[]);
        let refused = outcome(0xA801, 0, 0, &[]);
        let merged = combine(
            &parts2,
            vec![
                report(Ok(ok.clone()), Some(ok)),
                report(Ok(refused.clone()), Some(refused)),
            ],
            &counts2,
        );
        assert_eq!(merged.last_response.unwrap().status, Status(0xA801));
    }

    #[test]
    fn pending_counts_of_the_parts_are_summed() {
        let parts = parts(&[3, 5]);
        let merge = Merge {
            sink: tokio::sync::Mutex::new(crate::dimse::FnRetrieveSink(|_| ControlFlow::Continue(()))),
            counts: Mutex::new(parts.iter().map(Part::initial_counts).collect()),
            sizes: parts.iter().map(|p| p.instances).collect(),
            stopped: AtomicBool::new(false),
        };
        let c = merge.progress(
            1,
            SubOperations {
                remaining: Some(4),
                completed: 1,
                failed: 0,
                warning: 0,
            },
        );
        assert_eq!((c.remaining, c.completed), (Some(7), 1));
        // A part that leaves Remaining out: its size less what it has done.
        let c = merge.progress(
            0,
            SubOperations {
                remaining: None,
                completed: 1,
                failed: 1,
                warning: 0,
            },
        );
        assert_eq!((c.remaining, c.completed, c.failed), (Some(5), 2, 1));
    }
}
