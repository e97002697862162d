//! How the embedded SCP behaves: normally, or misbehaving on purpose for fault tests
//! (rejections, aborts, stalls, closing idle associations, scripted statuses).
// Public for `crate::testing`; without that feature only this crate uses it.
#![cfg_attr(not(feature = "testing"), allow(unreachable_pub))]

use std::sync::Arc;
use std::time::Duration;

/// A status to answer the n-th C-STORE (1-based, counted over the SCP's lifetime)
/// with, given the SOP Instance UID; `None` = normal processing.
pub type StoreStatusHook = Arc<dyn Fn(usize, &str) -> Option<u16> + Send + Sync>;

/// Fault injection for the embedded SCP. The default is a well-behaved SCP.
#[derive(Clone, Default)]
pub struct Behavior {
    /// Concurrent associations accepted; beyond, A-ASSOCIATE-RJ transient,
    /// source 3 (service provider, presentation), reason 2 "local limit exceeded".
    pub max_associations: Option<usize>,
    /// The first N association requests get A-ASSOCIATE-RJ transient, source 3,
    /// reason 1 "temporary congestion".
    pub reject_transient_first: usize,
    /// Every association request gets A-ASSOCIATE-RJ permanent, source 1, reason 3
    /// "calling AE title not recognized".
    pub reject_permanent: bool,
    /// Only accept associations whose called AE title is ours (else permanent RJ,
    /// reason 7 "called AE title not recognized").
    pub require_called_ae: bool,
    /// Answer the n-th C-STORE (1-based, over the SCP's lifetime) with A-ABORT
    /// instead of a response, once.
    pub abort_on_store: Option<usize>,
    /// Scripted C-STORE statuses.
    pub store_status: Option<StoreStatusHook>,
    /// Wait this long before every DIMSE response (a stalled PACS).
    pub response_delay: Option<Duration>,
    /// Close associations idle for this long (TCP close, no A-RELEASE), as PACS with
    /// an idle timeout do.
    pub close_idle_after: Option<Duration>,
    /// Max PDU announced (default 16384, like DCMTK).
    pub max_pdu_length: Option<u32>,
    /// Only these transfer syntaxes are accepted (default: any the registry can
    /// read), like a PACS that takes uncompressed data only.
    pub transfer_syntaxes: Option<Vec<String>>,
    /// Faults at random (for soak tests), on top of the scripted ones.
    pub random_faults: Option<RandomFaults>,
    /// Answer no SCP/SCU Role Selection item (the default roles of PS3.7 D.3.3.4
    /// then apply), and send C-GET sub-operations all the same, as Conquest does.
    pub omit_role_selection: bool,
    /// Do not offer C-GET (refuse its presentation contexts), like many PACS.
    pub no_get: bool,
}

/// Odds, in thousandths, of each fault: per association request (`reject`) or per
/// DIMSE message received (the others).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RandomFaults {
    /// A-ASSOCIATE-RJ transient (temporary congestion).
    pub reject_per_mille: u16,
    /// A-ABORT instead of a response.
    pub abort_per_mille: u16,
    /// TCP close instead of a response (no A-ABORT).
    pub close_per_mille: u16,
    /// A response delayed by up to `max_delay`.
    pub delay_per_mille: u16,
    /// Longest added delay.
    pub max_delay: Duration,
}

impl RandomFaults {
    /// Whether a fault with these odds happens now.
    pub fn roll(per_mille: u16) -> bool {
        per_mille > 0 && rand::random_range(0..1000u16) < per_mille
    }
}

impl std::fmt::Debug for Behavior {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behavior")
            .field("max_associations", &self.max_associations)
            .field("reject_transient_first", &self.reject_transient_first)
            .field("reject_permanent", &self.reject_permanent)
            .field("require_called_ae", &self.require_called_ae)
            .field("abort_on_store", &self.abort_on_store)
            .field("store_status", &self.store_status.as_ref().map(|_| "<hook>"))
            .field("response_delay", &self.response_delay)
            .field("close_idle_after", &self.close_idle_after)
            .field("transfer_syntaxes", &self.transfer_syntaxes)
            .field("random_faults", &self.random_faults)
            .field("omit_role_selection", &self.omit_role_selection)
            .field("no_get", &self.no_get)
            .finish()
    }
}
