//! Socket tuning and idle-socket checks that dicom-ul does not do.
//!
//! DIMSE is request/response with small messages: with Nagle on, the remote's small
//! response waits for our delayed ACK (~40 ms per exchange on Linux). We set
//! `TCP_NODELAY`, and re-arm `TCP_QUICKACK` before a PDU is read and after every
//! read that returned data, because the kernel drops it after a while; together they
//! remove the stall even against a stock peer that leaves Nagle on.

use std::pin::Pin;
use std::task::{Context, Poll};

use socket2::SockRef;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

use super::transport::{Idle, Transport};

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

/// Reads one PDU's bytes from the socket and re-arms `TCP_QUICKACK` after every read
/// that left the PDU incomplete. A PDU may arrive in pieces: DCMTK with Nagle on
/// writes a P-DATA-TF header (12 bytes) and then its body, and holds the body until
/// the header is acknowledged. While a large data set is still leaving our send
/// buffer after the last write, the kernel goes back to delayed ACKs, so the header's
/// ACK (and with it the rest of the response) would wait for the ~40 ms delayed-ACK
/// timer; re-arming after the partial read sends the pending ACK at once. Once the
/// PDU is whole nothing is re-armed, so its ACK still rides on our next request.
///
/// Over TLS the PDU's bytes are the decrypted ones and the ACKs those of the TCP
/// socket beneath: the same stall, the same cure.
pub(crate) struct QuickAckReader<'a, S: Transport> {
    stream: &'a mut S,
    /// The PDU's first 6 bytes (type, reserved, length), as far as seen.
    head: [u8; 6],
    /// Bytes of the PDU seen so far (more, once the next PDU's start arrives too).
    have: u64,
}

impl<'a, S: Transport> QuickAckReader<'a, S> {
    /// `buffered`: bytes already read from the socket, which the PDU starts with.
    pub(crate) fn new(stream: &'a mut S, buffered: &[u8]) -> Self {
        let mut reader = QuickAckReader {
            stream,
            head: [0; 6],
            have: 0,
        };
        reader.saw(buffered);
        reader
    }

    fn saw(&mut self, bytes: &[u8]) {
        let have = self.have as usize;
        if have < 6 {
            let n = (6 - have).min(bytes.len());
            self.head[have..have + n].copy_from_slice(&bytes[..n]);
        }
        self.have += bytes.len() as u64;
    }

    fn pdu_complete(&self) -> bool {
        let len = u32::from_be_bytes([self.head[2], self.head[3], self.head[4], self.head[5]]);
        self.have >= 6 && self.have >= 6 + len as u64
    }
}

impl<S: Transport> AsyncRead for QuickAckReader<'_, S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut *this.stream).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.saw(&buf.filled()[before..]);
            if !this.pdu_complete() {
                this.stream.quickack();
            }
        }
        res
    }
}

/// An idle association's socket should have nothing to read. A non-blocking peek
/// tells, without a round trip and without consuming anything.
/// (Nobody waits to read an idle association, so polling with a no-op waker
/// disturbs no one.)
pub(crate) fn peek_idle(stream: &TcpStream) -> Idle {
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    match stream.poll_peek(&mut cx, &mut buf) {
        Poll::Pending => Idle::Quiet,
        Poll::Ready(Ok(0)) => Idle::Closed,
        Poll::Ready(Ok(_)) => Idle::Data(byte[0]),
        Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => Idle::Quiet,
        Poll::Ready(Err(_)) => Idle::Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Bytes that arrive in pieces pass through unchanged.
    #[tokio::test]
    async fn quickack_reader_passes_split_writes_through() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = tokio::spawn(async move {
            let (mut peer, _) = listener.accept().await.unwrap();
            // A P-DATA-TF header, then its body later, as DCMTK writes them.
            peer.write_all(&[0x04, 0, 0, 0, 0, 8, 0, 0, 0, 4, 1, 3]).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            peer.write_all(b"\x01\x02").await.unwrap();
        });
        let mut stream = TcpStream::connect(addr).await.unwrap();
        tune(&stream);
        let mut got = vec![0u8; 14];
        let mut reader = QuickAckReader::new(&mut stream, &[]);
        reader.read_exact(&mut got[..12]).await.unwrap();
        assert!(!reader.pdu_complete());
        reader.read_exact(&mut got[12..]).await.unwrap();
        assert!(reader.pdu_complete());
        assert_eq!(got, [0x04, 0, 0, 0, 0, 8, 0, 0, 0, 4, 1, 3, 1, 2]);
        writer.await.unwrap();
    }

    #[test]
    fn pdu_completeness_counts_bytes_already_buffered() {
        let (std_a, _std_b) = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let a = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let b = l.accept().unwrap().0;
            (a, b)
        };
        std_a.set_nonblocking(true).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let mut stream = TcpStream::from_std(std_a).unwrap();
        // Header split inside the length field, then the 2-byte body.
        let mut r = QuickAckReader::new(&mut stream, &[0x04, 0, 0]);
        assert!(!r.pdu_complete());
        r.saw(&[0, 0, 2]);
        assert!(!r.pdu_complete());
        r.saw(&[9, 9]);
        assert!(r.pdu_complete());
        // A whole PDU (and the start of the next) already buffered.
        let r = QuickAckReader::new(&mut stream, &[0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0x06]);
        assert!(r.pdu_complete());
    }
}
