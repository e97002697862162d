//! Raw protocol access and fault injection, for this project's own tests,
//! examples and soak (feature `testing`, which they enable through the
//! dev-dependency of the package on itself). Not part of the API: an application
//! never needs to write raw PDUs, mark an association poisoned or script a
//! misbehaving SCP.

/// DIMSE command sets, raw: building requests and responses field by field.
pub mod command {
    pub use crate::dimse::command::*;
}
pub use crate::scp::{Behavior, RandomFaults, StoreStatusHook};

use crate::association::{Association, AssociationError};

/// Encode `bytes` as P-DATA-TF PDUs of at most `peer_max_pdu` bytes (0: no limit).
pub fn encode_pdata(out: &mut Vec<u8>, context_id: u8, is_command: bool, bytes: &[u8], last: bool, peer_max_pdu: u32) {
    crate::association::encode_pdata(out, context_id, is_command, bytes, last, peer_max_pdu);
}

/// Mark `assoc` as being in an unknown state: it will be aborted, not reused.
pub fn poison(assoc: &mut Association) {
    assoc.poison();
}

/// Write already-encoded PDUs to the association's socket, within the DIMSE timeout.
pub async fn write_all(assoc: &mut Association, bytes: &[u8]) -> Result<(), AssociationError> {
    assoc.write_all(bytes).await
}
