//! The stream an association runs over, and what belongs to it rather than to the
//! DICOM upper layer: the TCP tuning beneath it (NODELAY, QUICKACK re-arming,
//! keepalive) and the idle check that tells a live association from one the remote
//! has closed.
//!
//! [`Association`](super::Association) is generic over a [`Transport`], as
//! dicom-ul's `AsyncClientAssociation<S>` is over its stream; [`Stream`] is the one
//! the client uses: plain TCP or TLS over TCP, chosen per node.

use std::fmt::Debug;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::socket;
use super::tls::ClientTlsStream;

/// What an idle association's transport holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Nothing to read: alive as far as can be told without a round trip.
    Quiet,
    /// Closed or failed.
    Closed,
    /// DICOM bytes are waiting (the first one given: the PDU type, e.g. 05H
    /// A-RELEASE-RQ or 07H A-ABORT): the remote is ending the association.
    Data(u8),
}

/// A byte stream an association can run over.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + Sync + Debug {
    /// The TCP socket beneath, for the tuning and the QUICKACK re-arming.
    fn tcp(&self) -> &TcpStream;

    /// Whether anything arrived on an idle association, without a round trip and
    /// without blocking. DICOM bytes a transport had to take off the wire to tell
    /// (TLS decrypts whole records) are appended to `buffered`, where the next PDU
    /// read finds them.
    fn check_idle(&mut self, buffered: &mut BytesMut) -> Idle;

    /// Tune the socket once connected: NODELAY, QUICKACK, keepalive.
    fn tune(&self) {
        socket::tune(self.tcp());
    }

    /// Whether the bytes on the wire are TLS records.
    fn is_tls(&self) -> bool {
        false
    }

    /// Re-arm TCP_QUICKACK on the socket beneath (see the `socket` module).
    fn quickack(&self) {
        socket::quickack(self.tcp());
    }
}

impl Transport for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }

    /// A non-blocking peek: the bytes stay in the socket.
    fn check_idle(&mut self, _buffered: &mut BytesMut) -> Idle {
        socket::peek_idle(self)
    }
}

/// TLS: the idle check has to decrypt. Records that carry no DICOM bytes (TLS 1.3
/// session tickets and other post-handshake messages, which a server may send
/// while the association idles) are consumed by rustls and are no sign of a dead
/// association; DICOM bytes (an A-RELEASE-RQ, an A-ABORT) are kept for the next
/// read; a close_notify or a closed socket is the end.
impl Transport for ClientTlsStream {
    fn is_tls(&self) -> bool {
        true
    }

    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }

    fn check_idle(&mut self, buffered: &mut BytesMut) -> Idle {
        let mut chunk = [0u8; 512];
        let mut buf = ReadBuf::new(&mut chunk);
        // Nobody waits to read an idle association: a no-op waker disturbs no one.
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        match Pin::new(&mut *self).poll_read(&mut cx, &mut buf) {
            Poll::Pending => Idle::Quiet,
            Poll::Ready(Ok(())) if buf.filled().is_empty() => Idle::Closed,
            Poll::Ready(Ok(())) => {
                buffered.extend_from_slice(buf.filled());
                Idle::Data(buffered[0])
            }
            Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => Idle::Quiet,
            Poll::Ready(Err(_)) => Idle::Closed,
        }
    }
}

/// The client's transport: plain TCP, or TLS over TCP.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP (boxed: a TLS session is large).
    Tls(Box<ClientTlsStream>),
}

impl Transport for Stream {
    fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => s.tcp(),
        }
    }

    fn check_idle(&mut self, buffered: &mut BytesMut) -> Idle {
        match self {
            Stream::Tcp(s) => s.check_idle(buffered),
            Stream::Tls(s) => s.check_idle(buffered),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;
    use tokio::sync::oneshot;

    use super::*;

    /// A server certificate for 127.0.0.1, and a client config trusting it.
    fn configs() -> (rustls::ServerConfig, rustls::ClientConfig) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(cert.der().to_vec())).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (server, client)
    }

    /// A TLS record with no DICOM bytes (a KeyUpdate, like a late session ticket)
    /// arriving on an idle association is not a sign that it is dead; an
    /// A-RELEASE-RQ is, and is kept for the next read; close_notify ends it.
    #[tokio::test]
    async fn tls_idle_check_tells_post_handshake_records_from_dicom_bytes() {
        let (server_config, client_config) = configs();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (key_updated_tx, key_updated) = oneshot::channel();
        let (send_release_tx, send_release) = oneshot::channel::<()>();
        let (released_tx, released) = oneshot::channel();
        let (close_tx, close) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = tokio_rustls::TlsAcceptor::from(Arc::new(server_config))
                .accept(tcp)
                .await
                .unwrap();
            tls.get_mut().1.refresh_traffic_keys().unwrap();
            tls.flush().await.unwrap();
            key_updated_tx.send(()).unwrap();
            send_release.await.unwrap();
            tls.write_all(&[0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0]).await.unwrap();
            tls.flush().await.unwrap();
            released_tx.send(()).unwrap();
            close.await.unwrap();
            tls.shutdown().await.unwrap();
        });

        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(client_config))
            .connect(name, tcp)
            .await
            .unwrap();
        let mut stream = Stream::Tls(Box::new(tls));
        stream.tune();
        let mut buffered = BytesMut::new();

        key_updated.await.unwrap();
        // Bounded wait until the record is in our socket: a plain TCP peek would now
        // call the association dead.
        for _ in 0..200 {
            if matches!(socket::peek_idle(stream.tcp()), Idle::Data(_)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            socket::peek_idle(stream.tcp()),
            Idle::Data(0x17),
            "a TLS record is waiting"
        );
        assert_eq!(stream.check_idle(&mut buffered), Idle::Quiet);
        assert!(buffered.is_empty());
        assert_eq!(stream.check_idle(&mut buffered), Idle::Quiet);

        send_release_tx.send(()).unwrap();
        released.await.unwrap();
        let mut seen = Idle::Quiet;
        for _ in 0..200 {
            seen = stream.check_idle(&mut buffered);
            if seen != Idle::Quiet {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(seen, Idle::Data(0x05), "the A-RELEASE-RQ is seen");
        assert_eq!(
            &buffered[..],
            &[0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0],
            "and kept for the next read"
        );

        close_tx.send(()).unwrap();
        server.await.unwrap();
        let mut seen = Idle::Quiet;
        for _ in 0..200 {
            seen = stream.check_idle(&mut buffered);
            if seen != Idle::Quiet {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(seen, Idle::Closed, "close_notify ends it");
    }
}
