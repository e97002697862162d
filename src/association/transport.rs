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

    /// Re-arm TCP_QUICKACK on the socket beneath (see [`socket`]).
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

/// The client's transport: plain TCP, or TLS over TCP.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
}

impl Transport for Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
        }
    }

    fn check_idle(&mut self, buffered: &mut BytesMut) -> Idle {
        match self {
            Stream::Tcp(s) => s.check_idle(buffered),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
