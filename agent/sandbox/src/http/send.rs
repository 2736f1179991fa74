//! Sending one request to the addresses that were checked: a connection
//! is made to one of them, never by resolving the host again (which would
//! let a DNS answer that changes in between, "DNS rebinding", reach an
//! address the check refused). TLS still verifies the certificate against
//! the host's name, as any client does.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, WasiBody};

/// How one request is sent.
pub(crate) struct Connect<'a> {
    /// Where to connect: the host's addresses, as checked.
    pub(crate) addresses: &'a [SocketAddr],
    /// The host's name, for TLS; `None` for plain HTTP.
    pub(crate) tls_name: Option<&'a str>,
    pub(crate) connect_timeout: Duration,
    pub(crate) first_byte_timeout: Duration,
    pub(crate) between_bytes_timeout: Duration,
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// Sends `request` as `connect` says; the response's body is read with the
/// between-bytes timeout, and the connection lives until it is read.
pub(crate) async fn send(
    mut request: http::Request<WasiBody>,
    connect: Connect<'_>,
) -> Result<http::Response<WasiBody>, Error> {
    let tcp = tokio::time::timeout(connect.connect_timeout, first_connection(connect.addresses))
        .await
        .map_err(|_| Error::ConnectionTimeout)??;
    let stream: Box<dyn Stream> = match connect.tls_name {
        None => Box::new(tcp),
        Some(name) => {
            let server = rustls::pki_types::ServerName::try_from(name.to_owned())
                .map_err(|_| Error::HttpRequestUriInvalid)?;
            let tls = tokio::time::timeout(
                connect.connect_timeout,
                tls_connector()?.connect(server, tcp),
            )
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
            Box::new(tls)
        }
    };
    let (mut sender, connection) = tokio::time::timeout(
        connect.connect_timeout,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    // The connection is driven on its own until the response is read (or
    // the request dropped).
    tokio::spawn(async move {
        let _ = connection.await;
    });
    // Origin form: the scheme and host are for a proxy, not the server.
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    *request.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;
    let response = tokio::time::timeout(connect.first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;
    let between_bytes = connect.between_bytes_timeout.max(Duration::from_millis(1));
    Ok(response
        .map(|incoming| TimedBody { incoming, between_bytes, deadline: None }.boxed_unsync()))
}

/// A connection to the first of `addresses` that answers.
async fn first_connection(addresses: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = Some(error),
        }
    }
    Err(last.map_or(Error::DestinationNotFound, Error::Connect))
}

/// A TLS client trusting the Web PKI's roots, with the ring provider (the
/// one the rest of Baton uses).
fn tls_connector() -> Result<tokio_rustls::TlsConnector, Error> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|_| Error::TlsProtocolError)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// A response body that fails if the server goes quiet for longer than
/// `between_bytes`.
struct TimedBody {
    incoming: hyper::body::Incoming,
    between_bytes: Duration,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(frame) => {
                self.deadline = None;
                Poll::Ready(frame.map(|frame| frame.map_err(Error::from)))
            }
            Poll::Pending => {
                let between_bytes = self.between_bytes;
                let deadline = self
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(between_bytes)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}
