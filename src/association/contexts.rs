//! Presentation contexts: what we propose (profiles), what the remote accepted, and
//! how an operation finds a context it can use on an association.

use super::error::AssociationError;
use super::uids::{self, DEFAULT_STORAGE_SOP_CLASSES, UNCOMPRESSED_LE};

/// DICOM allows at most 128 presentation contexts per association (odd ids 1..=255);
/// dicom-ul would silently wrap the ids beyond that.
pub const MAX_PRESENTATION_CONTEXTS: usize = 128;

/// One presentation context to propose: an abstract syntax and the transfer syntaxes
/// we offer for it, in order of preference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProposedContext {
    /// The abstract syntax (SOP Class UID) of the context.
    pub abstract_syntax: String,
    /// The transfer syntax UIDs we offer for it, best first.
    pub transfer_syntaxes: Vec<String>,
}

impl ProposedContext {
    /// A context for `abstract_syntax` offering `transfer_syntaxes`, best first.
    pub fn new(abstract_syntax: &str, transfer_syntaxes: &[&str]) -> Self {
        ProposedContext {
            abstract_syntax: abstract_syntax.to_string(),
            transfer_syntaxes: transfer_syntaxes.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// The set of presentation contexts an association is negotiated with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Verification and Patient/Study Root FIND (Explicit and Implicit VR Little
    /// Endian in one context each: we encode those data sets ourselves), and the
    /// common storage SOP classes with Explicit VR Little Endian and Implicit VR
    /// Little Endian each in a context of its own, so that the remote accepts both
    /// where it can and a file goes out in its own syntax, byte for byte.
    Default,
    /// Contexts built for one SOP class / transfer syntax outside the default profile.
    Custom(Vec<ProposedContext>),
    /// Contexts where we also act as the SCP of the `scp_role` SOP classes (SCP/SCU
    /// Role Selection, PS3.7 D.3.3.4): a C-GET receives its instances as C-STORE
    /// sub-operations on its own association. A different capability from the
    /// other profiles: such an association is only reused for the same profile.
    WithScpRole {
        /// The presentation contexts to propose.
        contexts: Vec<ProposedContext>,
        /// The SOP Class UIDs for which we propose the SCP role.
        scp_role: Vec<String>,
    },
}

impl Profile {
    /// The contexts to propose. More than [`MAX_PRESENTATION_CONTEXTS`] cannot be
    /// carried by one association, and is an error rather than a silent cut.
    pub fn contexts(&self) -> Result<Vec<ProposedContext>, AssociationError> {
        let out = match self {
            Profile::Default => default_contexts(),
            Profile::Custom(contexts) | Profile::WithScpRole { contexts, .. } => contexts.clone(),
        };
        if out.len() > MAX_PRESENTATION_CONTEXTS {
            return Err(AssociationError::TooManyContexts(out.len()));
        }
        Ok(out)
    }

    /// A profile for storing one instance of `sop_class` encoded in `ts`: its own syntax
    /// in a context of its own (so the remote cannot prefer an uncompressed one over it),
    /// then each uncompressed syntax we can convert to in a context of its own (a
    /// compressed file cannot be converted, but if only these are accepted we can say
    /// precisely why it cannot be sent), plus Verification for validation.
    pub fn for_instance(sop_class: &str, ts: &str) -> Profile {
        let mut contexts = vec![ProposedContext::new(sop_class, &[ts])];
        for u in UNCOMPRESSED_LE.iter().filter(|u| **u != ts) {
            contexts.push(ProposedContext::new(sop_class, &[u]));
        }
        contexts.push(ProposedContext::new(uids::VERIFICATION, &UNCOMPRESSED_LE));
        Profile::Custom(contexts)
    }

    /// The SOP classes for which we propose the SCP role.
    pub fn scp_role_classes(&self) -> &[String] {
        match self {
            Profile::WithScpRole { scp_role, .. } => scp_role,
            _ => &[],
        }
    }

    /// Whether this profile proposes `abstract_syntax` with transfer syntax `ts`.
    pub fn proposes(&self, abstract_syntax: &str, ts: &str) -> bool {
        match self {
            Profile::Default => {
                UNCOMPRESSED_LE.contains(&ts)
                    && (DEFAULT_SERVICES.contains(&abstract_syntax)
                        || DEFAULT_STORAGE_SOP_CLASSES.contains(&abstract_syntax))
            }
            Profile::Custom(contexts) | Profile::WithScpRole { contexts, .. } => contexts
                .iter()
                .any(|c| c.abstract_syntax == abstract_syntax && c.transfer_syntaxes.iter().any(|t| t == ts)),
        }
    }
}

/// The default profile's services besides storage, each with both uncompressed
/// syntaxes in one context (storage classes get one context per syntax).
const DEFAULT_SERVICES: [&str; 3] = [uids::VERIFICATION, uids::STUDY_ROOT_FIND, uids::PATIENT_ROOT_FIND];

fn default_contexts() -> Vec<ProposedContext> {
    let mut out = Vec::with_capacity(DEFAULT_SERVICES.len() + 2 * DEFAULT_STORAGE_SOP_CLASSES.len());
    for sop in DEFAULT_SERVICES {
        out.push(ProposedContext::new(sop, &UNCOMPRESSED_LE));
    }
    for sop in DEFAULT_STORAGE_SOP_CLASSES {
        for ts in UNCOMPRESSED_LE {
            out.push(ProposedContext::new(sop, &[ts]));
        }
    }
    out
}

/// A presentation context the remote accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedContext {
    /// The Presentation Context ID (odd, 1-255).
    pub id: u8,
    /// The abstract syntax (SOP Class UID) accepted.
    pub abstract_syntax: String,
    /// The transfer syntax UID the remote chose.
    pub transfer_syntax: String,
}

/// What an operation needs from an association: an abstract syntax and one of some
/// transfer syntaxes (in order of preference), and the profile to negotiate when no
/// open association has it. This is the pool's request type: an idle association is
/// reused when its *accepted* contexts cover the request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContextRequest {
    /// The abstract syntax (SOP Class UID) needed.
    pub abstract_syntax: String,
    /// Acceptable transfer syntaxes, best first.
    pub transfer_syntaxes: Vec<String>,
    /// The contexts to propose when a new association is opened for it.
    pub profile: Profile,
}

impl ContextRequest {
    /// C-ECHO: Verification in any uncompressed syntax.
    pub fn verification() -> Self {
        Self::uncompressed(uids::VERIFICATION)
    }

    /// C-FIND or any other service whose data sets we encode ourselves.
    pub fn uncompressed(abstract_syntax: &str) -> Self {
        ContextRequest {
            abstract_syntax: abstract_syntax.to_string(),
            transfer_syntaxes: UNCOMPRESSED_LE.iter().map(|s| s.to_string()).collect(),
            profile: Profile::Default,
        }
    }

    /// C-STORE of an instance of `sop_class` encoded in `ts`: its own syntax first, then
    /// the uncompressed syntaxes it can be converted to (when it is itself uncompressed,
    /// or deflated).
    pub fn store(sop_class: &str, ts: &str) -> Self {
        let mut transfer_syntaxes = vec![ts.to_string()];
        if uids::is_convertible(ts) {
            for u in UNCOMPRESSED_LE {
                if u != ts {
                    transfer_syntaxes.push(u.to_string());
                }
            }
        }
        let profile = if Profile::Default.proposes(sop_class, ts) {
            Profile::Default
        } else {
            Profile::for_instance(sop_class, ts)
        };
        ContextRequest {
            abstract_syntax: sop_class.to_string(),
            transfer_syntaxes,
            profile,
        }
    }

    /// The best accepted context for this request among `accepted`, if any.
    pub fn select<'a>(&self, accepted: &'a [AcceptedContext]) -> Option<&'a AcceptedContext> {
        self.transfer_syntaxes.iter().find_map(|ts| {
            accepted
                .iter()
                .find(|c| c.abstract_syntax == self.abstract_syntax && &c.transfer_syntax == ts)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_fits_in_128_contexts_one_syntax_per_storage_context() {
        let contexts = Profile::Default.contexts().unwrap();
        assert!(contexts.len() <= MAX_PRESENTATION_CONTEXTS, "{}", contexts.len());
        let ct: Vec<_> = contexts
            .iter()
            .filter(|c| c.abstract_syntax == "1.2.840.10008.5.1.4.1.1.2")
            .map(|c| c.transfer_syntaxes.clone())
            .collect();
        assert_eq!(
            ct,
            vec![
                vec![uids::EXPLICIT_VR_LE.to_string()],
                vec![uids::IMPLICIT_VR_LE.to_string()]
            ]
        );
    }

    #[test]
    fn more_than_128_contexts_is_an_error_not_a_cut() {
        let many: Vec<_> = (0..200)
            .map(|i| ProposedContext::new(&format!("1.2.3.{i}"), &[uids::IMPLICIT_VR_LE]))
            .collect();
        let err = Profile::Custom(many).contexts().unwrap_err().to_string();
        assert!(err.contains("200") && err.contains("128"), "{err}");
    }

    #[test]
    fn implicit_file_prefers_its_own_context() {
        let req = ContextRequest::store("1.2.840.10008.5.1.4.1.1.4", uids::IMPLICIT_VR_LE);
        let accepted = vec![
            AcceptedContext {
                id: 1,
                abstract_syntax: "1.2.840.10008.5.1.4.1.1.4".into(),
                transfer_syntax: uids::EXPLICIT_VR_LE.into(),
            },
            AcceptedContext {
                id: 3,
                abstract_syntax: "1.2.840.10008.5.1.4.1.1.4".into(),
                transfer_syntax: uids::IMPLICIT_VR_LE.into(),
            },
        ];
        assert_eq!(req.select(&accepted).map(|c| c.id), Some(3));
    }

    #[test]
    fn store_request_of_compressed_file_gets_its_own_profile() {
        let req = ContextRequest::store("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.5");
        assert_eq!(req.transfer_syntaxes, vec!["1.2.840.10008.1.2.5".to_string()]);
        let contexts = req.profile.contexts().unwrap();
        assert_eq!(contexts[0].transfer_syntaxes, vec!["1.2.840.10008.1.2.5"]);
        assert!(matches!(req.profile, Profile::Custom(_)));
    }

    #[test]
    fn store_request_of_common_class_uses_default_profile_and_converts() {
        let req = ContextRequest::store("1.2.840.10008.5.1.4.1.1.4", uids::IMPLICIT_VR_LE);
        assert_eq!(req.profile, Profile::Default);
        let accepted = vec![AcceptedContext {
            id: 5,
            abstract_syntax: "1.2.840.10008.5.1.4.1.1.4".into(),
            transfer_syntax: uids::EXPLICIT_VR_LE.into(),
        }];
        assert_eq!(req.select(&accepted).map(|c| c.id), Some(5));
    }

    #[test]
    fn big_endian_file_can_be_sent_as_little_endian() {
        let req = ContextRequest::store("1.2.840.10008.5.1.4.1.1.2", uids::EXPLICIT_VR_BE);
        assert!(req.transfer_syntaxes.contains(&uids::EXPLICIT_VR_LE.to_string()));
        assert!(matches!(req.profile, Profile::Custom(_)));
    }
}
