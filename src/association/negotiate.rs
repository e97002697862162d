//! The requestor's side of association establishment (PS3.8 7.1, 9.3.2-9.3.4):
//! the A-ASSOCIATE-RQ we send, and what the A-ASSOCIATE-AC, -RJ or an A-ABORT
//! that comes back means.
//!
//! Written over dicom-ul's PDU codec rather than its `ClientAssociationOptions`
//! because an operator (and the refused-context memory) needs what dicom-ul drops:
//! the result and reason of every presentation context the remote did *not*
//! accept, its implementation class and version, and its exact max PDU (0 meaning
//! "no limit", PS3.8 D.1). Owning the stream also lets the association be generic
//! over its transport.

use dicom_ul::pdu::{
    AssociationAC, AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason as P,
    AssociationRJSource, AssociationRQ, PresentationContextProposed, PresentationContextResultReason as R,
    RequestorRoles, UserVariableItem,
};
use dicom_ul::Pdu;

use super::contexts::{AcceptedContext, ProposedContext};
use super::error::AssociationError;
use crate::config::UserIdentitySettings;

/// DICOM Application Context Name (PS3.7 A.2.1).
const APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";
use crate::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};

/// Why the remote did not accept a proposed presentation context
/// (A-ASSOCIATE-AC result/reason, PS3.8 9.3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContextRefusal {
    /// Result 1.
    UserRejection,
    /// Result 2.
    NoReason,
    /// Result 3: the remote does not support the SOP class at all.
    AbstractSyntaxNotSupported,
    /// Result 4: it supports the SOP class, but in none of the proposed syntaxes.
    TransferSyntaxesNotSupported,
}

impl ContextRefusal {
    /// Whether the refusal is a statement about what the remote supports (results 3
    /// and 4), worth remembering, rather than a decision of the moment.
    pub fn is_capability(self) -> bool {
        matches!(
            self,
            ContextRefusal::AbstractSyntaxNotSupported | ContextRefusal::TransferSyntaxesNotSupported
        )
    }

    /// The refusal in words.
    pub fn as_str(self) -> &'static str {
        match self {
            ContextRefusal::UserRejection => "user rejection",
            ContextRefusal::NoReason => "no reason given",
            ContextRefusal::AbstractSyntaxNotSupported => "abstract syntax not supported",
            ContextRefusal::TransferSyntaxesNotSupported => "transfer syntaxes not supported",
        }
    }
}

/// A proposed presentation context the remote did not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedContext {
    /// The Presentation Context ID we proposed.
    pub id: u8,
    /// The abstract syntax (SOP Class UID) proposed.
    pub abstract_syntax: String,
    /// The transfer syntax UIDs proposed.
    pub transfer_syntaxes: Vec<String>,
    /// Why the remote did not accept it (A-ASSOCIATE-AC result).
    pub reason: ContextRefusal,
}

/// What an A-ASSOCIATE-AC granted.
#[derive(Debug, Clone)]
pub(crate) struct Negotiated {
    pub accepted: Vec<AcceptedContext>,
    pub refused: Vec<RefusedContext>,
    /// The remote's maximum PDU length; 0 means no limit (PS3.8 D.1).
    pub peer_max_pdu: u32,
    pub peer_implementation_class: Option<String>,
    pub peer_implementation_version: Option<String>,
    /// The SCP/SCU Role Selection items of the answer: (SOP class, roles granted).
    pub roles: Vec<(String, RequestorRoles)>,
}

/// The A-ASSOCIATE-RQ for `proposed` (ids 1, 3, 5, ...), proposing the SCP role
/// (and not the SCU role) for the `scp_role` SOP classes (PS3.7 D.3.3.4), with the
/// user identity sub-item when one is given.
pub(crate) fn request(
    calling_ae: &str,
    called_ae: &str,
    proposed: &[ProposedContext],
    max_pdu: u32,
    scp_role: &[String],
    identity: Option<UserVariableItem>,
) -> Pdu {
    let mut user_variables = vec![
        UserVariableItem::MaxLength(max_pdu),
        UserVariableItem::ImplementationClassUID(IMPLEMENTATION_CLASS_UID.to_string()),
    ];
    for sop in scp_role {
        user_variables.push(UserVariableItem::ScuScpRoleSelectionSubItem(
            sop.clone(),
            RequestorRoles { scu: false, scp: true },
        ));
    }
    user_variables.push(UserVariableItem::ImplementationVersionName(
        IMPLEMENTATION_VERSION_NAME.to_string(),
    ));
    user_variables.extend(identity);
    Pdu::AssociationRQ(AssociationRQ {
        protocol_version: 1,
        calling_ae_title: calling_ae.to_string(),
        called_ae_title: called_ae.to_string(),
        application_context_name: APPLICATION_CONTEXT.to_string(),
        presentation_contexts: proposed
            .iter()
            .enumerate()
            .map(|(i, pc)| PresentationContextProposed {
                id: context_id(i),
                abstract_syntax: pc.abstract_syntax.clone(),
                transfer_syntaxes: pc.transfer_syntaxes.clone(),
            })
            .collect(),
        user_variables,
    })
}

/// The presentation context id of the `index`-th proposed context.
pub(crate) fn context_id(index: usize) -> u8 {
    (index * 2 + 1) as u8
}

/// Interpret the remote's answer to our A-ASSOCIATE-RQ. `identity`: the user
/// identity we sent, if any.
pub(crate) fn answer(
    pdu: Pdu,
    proposed: &[ProposedContext],
    called_ae: &str,
    identity: Option<&UserIdentitySettings>,
) -> Result<Negotiated, AssociationError> {
    let kind = identity.map(|i| i.kind.as_str());
    match pdu {
        Pdu::AssociationAC(ac) => {
            // PS3.7 D.3.3.7.2: with a positive response requested, an AC without the
            // response item means the identity was not confirmed.
            if identity.is_some_and(|i| i.positive_response_requested)
                && !super::identity::has_response(&ac.user_variables)
            {
                return Err(AssociationError::IdentityNotConfirmed {
                    called_ae: called_ae.to_string(),
                    kind: kind.unwrap_or("-"),
                });
            }
            accepted(ac, proposed, called_ae)
        }
        Pdu::AssociationRJ(rj) => Err(rejected(&rj, called_ae, kind)),
        Pdu::AbortRQ { source } => Err(AssociationError::Aborted(format!(
            "{} during negotiation",
            super::error::abort_source_words(&source)
        ))),
        other => Err(AssociationError::Protocol(format!(
            "unexpected PDU in answer to A-ASSOCIATE-RQ: {}",
            other.short_description()
        ))),
    }
}

fn accepted(ac: AssociationAC, proposed: &[ProposedContext], called_ae: &str) -> Result<Negotiated, AssociationError> {
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for (i, pc) in proposed.iter().enumerate() {
        let id = context_id(i);
        // A context missing from the answer was not accepted either (PS3.8 9.3.3.2
        // requires one item per proposed context; some peers leave refused ones out).
        let result = ac.presentation_contexts.iter().find(|r| r.id == id);
        let reason = match result.map(|r| &r.reason) {
            Some(R::Acceptance) => {
                let ts = trim_uid(result.map(|r| r.transfer_syntax.as_str()).unwrap_or(""));
                // Only a syntax we offered in this context is usable; anything else is
                // a broken peer, and the context is treated as refused.
                if pc.transfer_syntaxes.contains(&ts) {
                    accepted.push(AcceptedContext {
                        id,
                        abstract_syntax: pc.abstract_syntax.clone(),
                        transfer_syntax: ts,
                    });
                    continue;
                }
                tracing::debug!(
                    target: "pacs_net::negotiation",
                    id,
                    transfer_syntax = %ts,
                    "the remote accepted a context with a transfer syntax we did not propose; ignoring it"
                );
                ContextRefusal::NoReason
            }
            Some(R::UserRejection) => ContextRefusal::UserRejection,
            Some(R::AbstractSyntaxNotSupported) => ContextRefusal::AbstractSyntaxNotSupported,
            Some(R::TransferSyntaxesNotSupported) => ContextRefusal::TransferSyntaxesNotSupported,
            Some(R::NoReason) | None => ContextRefusal::NoReason,
        };
        refused.push(RefusedContext {
            id,
            abstract_syntax: pc.abstract_syntax.clone(),
            transfer_syntaxes: pc.transfer_syntaxes.clone(),
            reason,
        });
    }
    let mut peer_max_pdu = dicom_ul::pdu::DEFAULT_MAX_PDU;
    let mut peer_implementation_class = None;
    let mut peer_implementation_version = None;
    let mut roles = Vec::new();
    for item in ac.user_variables {
        match item {
            UserVariableItem::ScuScpRoleSelectionSubItem(sop, granted) => roles.push((trim_uid(&sop), granted)),
            UserVariableItem::MaxLength(n) => peer_max_pdu = n,
            UserVariableItem::ImplementationClassUID(s) => peer_implementation_class = Some(trim_uid(&s)),
            UserVariableItem::ImplementationVersionName(s) => peer_implementation_version = Some(s.trim().to_string()),
            _ => {}
        }
    }
    if accepted.is_empty() {
        return Err(AssociationError::NoAcceptedContexts {
            called_ae: called_ae.to_string(),
            proposed: proposed.len(),
            refusals: summarize_refusals(&refused),
        });
    }
    Ok(Negotiated {
        accepted,
        refused,
        peer_max_pdu,
        peer_implementation_class,
        peer_implementation_version,
        roles,
    })
}

/// "61 abstract syntax not supported, 2 transfer syntaxes not supported".
fn summarize_refusals(refused: &[RefusedContext]) -> String {
    let mut counts: Vec<(ContextRefusal, usize)> = Vec::new();
    for r in refused {
        match counts.iter_mut().find(|(k, _)| *k == r.reason) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.reason, 1)),
        }
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n} {}", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An A-ASSOCIATE-RJ in words, classified.
pub(crate) fn rejected(rj: &AssociationRJ, called_ae: &str, identity: Option<&'static str>) -> AssociationError {
    let transient = rj.result == AssociationRJResult::Transient;
    let (source_code, source_name, capacity) = match &rj.source {
        AssociationRJSource::ServiceUser(_) => (1, "service user", false),
        AssociationRJSource::ServiceProviderASCE(_) => (2, "service provider (ACSE)", false),
        AssociationRJSource::ServiceProviderPresentation(r) => (
            3,
            "service provider (presentation)",
            matches!(r, P::TemporaryCongestion | P::LocalLimitExceeded),
        ),
    };
    AssociationError::Rejected {
        called_ae: called_ae.to_string(),
        transient,
        source_code,
        source_name,
        reason: rj.source.to_string(),
        capacity,
        identity,
    }
}

pub(crate) fn trim_uid(uid: &str) -> String {
    uid.trim_end_matches(|c: char| c == '\0' || c.is_whitespace())
        .trim_start()
        .to_string()
}

/// The name of a SOP class or transfer syntax UID, for the negotiation log.
pub fn uid_name(uid: &str) -> String {
    use dicom_core::dictionary::UidDictionary;
    use dicom_encoding::TransferSyntaxIndex;
    if let Some(ts) = dicom_transfer_syntax_registry::TransferSyntaxRegistry.get(uid) {
        return ts.name().to_string();
    }
    match dicom_dictionary_std::StandardSopClassDictionary.by_uid(uid) {
        Some(entry) => entry.name.to_string(),
        None => uid.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use dicom_ul::pdu::PresentationContextResult;

    use super::*;
    use crate::association::uids;

    fn ac(results: Vec<(u8, R, &str)>, max: u32) -> Pdu {
        Pdu::AssociationAC(AssociationAC {
            protocol_version: 1,
            calling_ae_title: "A".into(),
            called_ae_title: "B".into(),
            application_context_name: APPLICATION_CONTEXT.into(),
            presentation_contexts: results
                .into_iter()
                .map(|(id, reason, ts)| PresentationContextResult {
                    id,
                    reason,
                    transfer_syntax: ts.into(),
                })
                .collect(),
            user_variables: vec![
                UserVariableItem::MaxLength(max),
                UserVariableItem::ImplementationClassUID("1.2.3\0".into()),
                UserVariableItem::ImplementationVersionName("PEER_1".into()),
            ],
        })
    }

    #[test]
    fn refusal_reasons_and_peer_details_are_kept() {
        let proposed = vec![
            ProposedContext::new(uids::VERIFICATION, &[uids::EXPLICIT_VR_LE]),
            ProposedContext::new("1.2.840.10008.5.1.4.1.1.2", &[uids::IMPLICIT_VR_LE]),
            ProposedContext::new("1.2.840.10008.5.1.4.1.1.4", &[uids::EXPLICIT_VR_LE]),
            ProposedContext::new("1.2.840.10008.5.1.4.1.1.7", &[uids::EXPLICIT_VR_LE]),
        ];
        let pdu = ac(
            vec![
                (1, R::Acceptance, uids::EXPLICIT_VR_LE),
                (3, R::TransferSyntaxesNotSupported, ""),
                (5, R::AbstractSyntaxNotSupported, ""),
                // 7 missing from the answer.
            ],
            0,
        );
        let n = answer(pdu, &proposed, "B", None).unwrap();
        assert_eq!(n.accepted.len(), 1);
        assert_eq!(n.accepted[0].transfer_syntax, uids::EXPLICIT_VR_LE);
        let reasons: Vec<_> = n.refused.iter().map(|r| (r.id, r.reason)).collect();
        assert_eq!(
            reasons,
            vec![
                (3, ContextRefusal::TransferSyntaxesNotSupported),
                (5, ContextRefusal::AbstractSyntaxNotSupported),
                (7, ContextRefusal::NoReason)
            ]
        );
        assert_eq!(n.peer_max_pdu, 0, "0 (no limit) is kept as it was sent");
        assert_eq!(n.peer_implementation_class.as_deref(), Some("1.2.3"));
        assert_eq!(n.peer_implementation_version.as_deref(), Some("PEER_1"));
    }

    #[test]
    fn an_accepted_syntax_we_never_proposed_is_not_used() {
        let proposed = vec![ProposedContext::new(uids::VERIFICATION, &[uids::IMPLICIT_VR_LE])];
        let err = answer(
            ac(vec![(1, R::Acceptance, uids::EXPLICIT_VR_BE)], 16384),
            &proposed,
            "B",
            None,
        )
        .unwrap_err();
        assert!(matches!(err, AssociationError::NoAcceptedContexts { .. }), "{err}");
    }

    #[test]
    fn no_accepted_context_says_why() {
        let proposed = vec![ProposedContext::new("1.2.3.4", &[uids::IMPLICIT_VR_LE])];
        let err = answer(
            ac(vec![(1, R::AbstractSyntaxNotSupported, "")], 16384),
            &proposed,
            "B",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("1 abstract syntax not supported"), "{err}");
    }
}
