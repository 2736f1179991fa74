//! Outgoing HTTP (`wasi:http/outgoing-handler`), granted per deployment.
//! Every request a flow makes, redirects included (the guest follows them,
//! so each is a request of its own), passes [`HttpHooks::send_request`]:
//! refused unless the deployment's `outgoing_hosts` allow it, refused if
//! its host resolves to the agent's own machine or its cloud's metadata
//! service unless an entry names that host exactly, and held to a timeout,
//! a response size and a number of requests per run. A refusal is an HTTP
//! error the flow sees (`HTTP-request-denied`), not a trap, and a warning
//! in the run's log names the host. A request goes to the addresses that
//! were checked (`send.rs`), not to a second lookup's.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use baton_proto::v1::LogLevel;
use baton_proto::v1::outgoing::{OutgoingHosts, Target, is_guarded_address};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt as _;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::host::RunLog;

mod send;

/// What a run may do over HTTP.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpLimits {
    /// Connecting, the first byte of the response, and each wait between
    /// its bytes, each.
    pub(crate) timeout: Duration,
    /// Bytes of one response's body.
    pub(crate) max_response_bytes: u64,
    /// Requests per run (redirects count).
    pub(crate) max_requests: u32,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(30), max_response_bytes: 16 << 20, max_requests: 1000 }
    }
}

/// The hooks of one run's outgoing HTTP.
pub(crate) struct HttpHooks {
    hosts: OutgoingHosts,
    limits: HttpLimits,
    requests: u32,
    log: Arc<RunLog>,
}

type Sent = Box<
    dyn Future<
            Output = Result<
                (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + Send>),
                Error,
            >,
        > + Send,
>;

impl HttpHooks {
    pub(crate) fn new(hosts: OutgoingHosts, limits: HttpLimits, log: Arc<RunLog>) -> Self {
        Self { hosts, limits, requests: 0, log }
    }

    fn refuse(&self, why: String, error: Error) -> Sent {
        self.log.log(LogLevel::Warn, &why);
        Box::new(std::future::ready(Err(error)))
    }
}

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let Some(host) = uri.host().map(str::to_owned) else {
            return Box::new(std::future::ready(Err(Error::HttpRequestUriInvalid)));
        };
        let port = uri.port_u16().unwrap_or(if scheme == "http" { 80 } else { 443 });
        let shown = format!("{scheme}://{host}:{port}");
        let target = Target { scheme: &scheme, host: &host, port, path: uri.path() };
        let Some(entry) = self.hosts.allowing(&target) else {
            return self.refuse(
                format!(
                    "outgoing HTTP request to {shown} refused: not in the deployment's outgoing_hosts"
                ),
                Error::HttpRequestDenied,
            );
        };
        if self.requests >= self.limits.max_requests {
            return self.refuse(
                format!(
                    "outgoing HTTP request to {shown} refused: the run made its {} requests",
                    self.limits.max_requests
                ),
                Error::ConnectionLimitReached,
            );
        }
        self.requests += 1;
        let may_reach_guarded = entry.names_one_host();
        let limits = self.limits;
        let log = Arc::clone(&self.log);
        Box::new(async move {
            let host_only = host.trim_start_matches('[').trim_end_matches(']').to_owned();
            let resolved: Vec<SocketAddr> = match tokio::time::timeout(
                limits.timeout,
                tokio::net::lookup_host((host_only.as_str(), port)),
            )
            .await
            {
                Ok(Ok(addresses)) => addresses.collect(),
                Ok(Err(_)) => return Err(Error::DestinationNotFound),
                Err(_) => return Err(Error::DnsTimeout),
            };
            if !may_reach_guarded
                && let Some(guarded) =
                    resolved.iter().find(|address| is_guarded_address(address.ip()))
            {
                log.log(
                    LogLevel::Warn,
                    &format!(
                        "outgoing HTTP request to {shown} refused: it resolves to {}, the agent's own machine or its cloud's metadata service, which only an outgoing_hosts entry naming {host} exactly allows",
                        guarded.ip()
                    ),
                );
                return Err(Error::DestinationIpProhibited);
            }
            let clamp =
                |given: Option<Duration>| given.map_or(limits.timeout, |d| d.min(limits.timeout));
            let connect = send::Connect {
                // Only the addresses checked above: never a second lookup.
                addresses: &resolved,
                tls_name: (scheme == "https").then_some(host_only.as_str()),
                connect_timeout: clamp(options.and_then(|o| o.connect_timeout)),
                first_byte_timeout: clamp(options.and_then(|o| o.first_byte_timeout)),
                between_bytes_timeout: clamp(options.and_then(|o| o.between_bytes_timeout)),
            };
            let response = send::send(request, connect).await?;
            let capped = response.map(|body| {
                CappedBody {
                    inner: body.boxed_unsync(),
                    left: limits.max_response_bytes,
                    limit: limits.max_response_bytes,
                    log,
                    shown,
                }
                .boxed_unsync()
            });
            // The connection reports its own end to no one: a broken one
            // shows as an error reading the response.
            let io = std::future::ready(Ok(()));
            Ok((capped, Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>))
        })
    }
}

/// A response body that ends in an error past its run's limit.
struct CappedBody {
    inner: WasiBody,
    left: u64,
    limit: u64,
    log: Arc<RunLog>,
    shown: String,
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let size = data.len() as u64;
            if size > self.left {
                self.left = 0;
                let message = format!(
                    "the response of {} is over the {} MiB a run may receive in one response: cut off",
                    self.shown,
                    self.limit >> 20
                );
                self.log.log(LogLevel::Warn, &message);
                return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(self.limit)))));
            }
            self.left -= size;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
