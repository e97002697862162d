//! Socket tuning and idle-socket checks that dicom-ul does not do.
//!
//! DIMSE is request/response with small messages: with Nagle on, the remote's small
//! response waits for our delayed ACK (~40 ms per exchange on Linux). We set
//! `TCP_NODELAY`, and re-arm `TCP_QUICKACK` before every read because the kernel
//! drops it after a while; together they remove the stall even against a stock peer
//! that leaves Nagle on.

use socket2::SockRef;
use tokio::net::TcpStream;

/// Disable Nagle, ask for immediate ACKs, and turn TCP keepalive on so that an idle
/// association silently dropped by a firewall is noticed (its socket errors) before
/// an operation is sent on it.
pub(crate) fn tune(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(std::time::Duration::from_secs(60))
        .with_interval(std::time::Duration::from_secs(10));
    if let Err(e) = SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "could not set TCP keepalive");
    }
    quickack(stream);
}

/// Re-arm TCP_QUICKACK (Linux); a no-op elsewhere.
pub(crate) fn quickack(stream: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = SockRef::from(stream).set_tcp_quickack(true);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = stream;
    }
}

/// An idle association's socket should have nothing to read. Bytes waiting mean the
/// remote sent A-RELEASE-RQ or A-ABORT; a zero-length read means it closed. Either
/// way the association is stale. A non-blocking peek tells, without a round trip.
pub(crate) fn idle_socket_is_alive(stream: &TcpStream) -> bool {
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    match SockRef::from(stream).peek(&mut buf) {
        Ok(0) => false,
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => true,
        Err(_) => false,
    }
}
