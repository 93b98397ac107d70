//! Connections over TLS: the handshake of an accepted connection, under its request head
//! clock (a client that stalls mid-handshake is closed at `--read-header-timeout`), and the
//! stream both servers read afterwards ([`TlsConnection`]).
//!
//! A client that does not speak TLS (its first byte is not a TLS handshake record, such as a
//! plain HTTP request) is closed without a byte written back: no TLS alert, no HTTP answer.
//! For gRPC, handshakes run in tasks of their own and tonic receives finished connections
//! ([`Acceptor::into_tls_stream`]), so that a slow client delays no other.

use super::accept::{Acceptor, Admitted};
use super::poll_read_added;
use super::watch::{Connection, ConnectionInfo, Protocol};
use crate::api::tls::{PeerCertificate, Tls};
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, ReadBuf};

/// The first byte of every TLS connection: the content type of a handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

/// A connection after its TLS handshake.
pub struct TlsConnection {
    stream: tokio_rustls::server::TlsStream<RequireTls<Connection>>,
    info: ConnectionInfo,
    protocol: Protocol,
}

impl TlsConnection {
    /// The requests in flight and the client's certificate.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// What the connection speaks, as ALPN chose (HTTP/1.1 unless `h2`).
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }
}

impl Admitted {
    /// Runs the TLS handshake of a listener speaking `protocol` (HTTP/1.1 offers `h2` too),
    /// with the configuration in force now; the connection's clocks run from its accept.
    pub async fn handshake(self, tls: &Tls, protocol: Protocol) -> io::Result<TlsConnection> {
        let connection = self.watch(protocol);
        let activity = connection.activity().clone();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config(protocol));
        let stream = acceptor.accept(RequireTls::new(connection)).await?;
        let session = stream.get_ref().1;
        let protocol = match session.alpn_protocol() {
            Some(b"h2") => Protocol::Http2,
            _ => protocol,
        };
        activity.speak(protocol);
        let peer = session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|certificate| Arc::new(PeerCertificate::from_der(certificate)));
        Ok(TlsConnection {
            stream,
            info: ConnectionInfo { activity, peer },
            protocol,
        })
    }
}

impl Acceptor {
    /// Connections after their handshakes, as a stream for tonic; it never ends and never
    /// fails (a failed handshake closes its connection and is logged at debug level). The
    /// listener closes when the stream is dropped.
    pub fn into_tls_stream(
        mut self,
        tls: Arc<Tls>,
        protocol: Protocol,
    ) -> impl futures_util::Stream<Item = Result<TlsConnection, Infallible>> {
        // Unbounded: every connection in it holds one of the bounded connection slots.
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let admitted = tokio::select! {
                    admitted = self.accept() => admitted,
                    () = sender.closed() => return,
                };
                let (tls, sender) = (tls.clone(), sender.clone());
                tokio::spawn(async move {
                    let peer = admitted.peer;
                    match admitted.handshake(&tls, protocol).await {
                        Ok(connection) => {
                            let _ = sender.send(connection);
                        }
                        Err(e) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                    }
                });
            }
        });
        futures_util::stream::unfold(receiver, |mut receiver| async move {
            let connection = receiver.recv().await?;
            Some((Ok(connection), receiver))
        })
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

delegate_async_write!(TlsConnection => stream);

/// tonic hands this to every request of the connection, as for a plain one.
impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        self.info.clone()
    }
}

/// A transport whose first byte must open a TLS handshake record; anything else fails the
/// read (`InvalidData`), before TLS could answer it.
struct RequireTls<IO> {
    io: IO,
    checked: bool,
}

impl<IO> RequireTls<IO> {
    fn new(io: IO) -> Self {
        RequireTls { io, checked: false }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for RequireTls<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let added = ready!(poll_read_added(Pin::new(&mut this.io), cx, buf))?;
        if !this.checked
            && let Some(&first) = added.first()
        {
            if first != HANDSHAKE_RECORD {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the client does not speak TLS; closed without an answer",
                )));
            }
            this.checked = true;
        }
        Poll::Ready(Ok(()))
    }
}

delegate_async_write!(RequireTls<IO> => io, for IO);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_plain_request_fails_the_first_read_and_tls_passes() {
        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let mut plain = RequireTls::new(server);
        let mut buf = [0; 16];
        let refused = plain.read(&mut buf).await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidData);

        let (mut client, server) = tokio::io::duplex(64);
        client.write_all(&[HANDSHAKE_RECORD, 3, 1]).await.unwrap();
        let mut tls = RequireTls::new(server);
        assert_eq!(tls.read(&mut buf).await.unwrap(), 3);
        client.write_all(b"any").await.unwrap();
        assert_eq!(
            tls.read(&mut buf).await.unwrap(),
            3,
            "only the first byte is checked"
        );
    }
}
