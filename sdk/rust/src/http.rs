//! Outgoing HTTP from a flow: a small blocking client over
//! `wasi:http/outgoing-handler`. The host lets a request through only to
//! the hosts the deployment lists in `capabilities.outgoing_hosts` (or
//! `baton flow run --allow-host`); anything else comes back as an error
//! the flow can handle, and the run's log names the refused host.
//!
//! ```text
//! let rates: Rates = baton_sdk::http::get("https://api.example.com/rates")?.json()?;
//! let created = baton_sdk::http::post("https://api.example.com/orders")
//!     .bearer(&baton_sdk::secret("api-token")?)
//!     .json(&order)?
//!     .send()?;
//! ```

use anyhow::{Context as _, Result, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// Redirects followed at most (each is a request the host checks).
const MAX_REDIRECTS: u32 = 5;
/// Bytes written to the host per call (the most one write may carry).
const WRITE_CHUNK: usize = 4096;

/// `GET url`.
pub fn get(url: &str) -> Result<Response> {
    Request::new("GET", url).send()
}

/// A `POST` to `url`, to be given a body and sent.
pub fn post(url: &str) -> Request {
    Request::new("POST", url)
}

/// A request being built.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    follow_redirects: bool,
}

/// A response, its body read whole.
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    url: String,
}

impl Request {
    /// A request with this method (`GET`, `PUT`, ...) to `url`.
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            url: url.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            follow_redirects: true,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// `Authorization: Bearer TOKEN` (a secret, say).
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// The body, as is.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The body as JSON, with its content type.
    pub fn json(self, value: &impl Serialize) -> Result<Self> {
        let body = serde_json::to_vec(value).context("serializing the request's JSON body")?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Whether to follow redirects (yes, up to 5, by default).
    pub fn follow_redirects(mut self, follow: bool) -> Self {
        self.follow_redirects = follow;
        self
    }

    /// Sends it and reads the whole response. An error is a request that
    /// got no response (refused by the host, unreachable, timed out);
    /// a response of any status is `Ok`.
    pub fn send(self) -> Result<Response> {
        let mut url = self.url.clone();
        let mut method = self.method.clone();
        let mut body = self.body.clone();
        for _ in 0..=MAX_REDIRECTS {
            let response = send_once(&method, &url, &self.headers, &body)?;
            let location = response.header("location").map(str::to_owned);
            match (response.status, location) {
                (301 | 302 | 303 | 307 | 308, Some(location)) if self.follow_redirects => {
                    url = join(&url, &location)?;
                    // 303, and 301/302 after a POST, become a GET.
                    if response.status == 303
                        || (matches!(response.status, 301 | 302) && method == "POST")
                    {
                        method = "GET".to_owned();
                        body.clear();
                    }
                }
                _ => return Ok(response),
            }
        }
        bail!("{} {}: more than {MAX_REDIRECTS} redirects", self.method, self.url)
    }
}

impl Response {
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of a header (names compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The URL this response came from (after redirects).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<String> {
        String::from_utf8(self.body.clone()).context("the response's body is not UTF-8")
    }

    /// The body as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("the response of {} is not the JSON expected", self.url))
    }

    /// `Err` unless the status is 2xx, naming it.
    pub fn error_for_status(self) -> Result<Self> {
        if self.is_success() {
            Ok(self)
        } else {
            bail!("{} answered {}: {}", self.url, self.status, String::from_utf8_lossy(&self.body))
        }
    }
}

/// The parts of an absolute URL the host needs.
struct Url<'a> {
    scheme: &'a str,
    authority: &'a str,
    path_with_query: String,
}

fn parse(url: &str) -> Result<Url<'_>> {
    let (scheme, rest) =
        url.split_once("://").ok_or_else(|| anyhow!("`{url}` is not an absolute URL"))?;
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path_with_query) = match rest.find(['/', '?']) {
        Some(at) if rest[at..].starts_with('?') => (&rest[..at], format!("/{}", &rest[at..])),
        Some(at) => (&rest[..at], rest[at..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    if authority.is_empty() {
        bail!("`{url}` names no host");
    }
    Ok(Url { scheme, authority, path_with_query })
}

/// `location` (absolute, or relative to `base`) as an absolute URL.
fn join(base: &str, location: &str) -> Result<String> {
    if location.contains("://") {
        return Ok(location.to_owned());
    }
    let url = parse(base)?;
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{}://{rest}", url.scheme));
    }
    if location.starts_with('/') {
        return Ok(format!("{}://{}{location}", url.scheme, url.authority));
    }
    let path = url.path_with_query.split('?').next().unwrap_or("/").to_owned();
    let dir = &path[..path.rfind('/').map_or(0, |slash| slash + 1)];
    Ok(format!("{}://{}{dir}{location}", url.scheme, url.authority))
}

fn send_once(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Response> {
    let parts = parse(url)?;
    let fields = Fields::new();
    for (name, value) in headers {
        fields
            .append(name, value.as_bytes())
            .map_err(|e| anyhow!("the header `{name}` is not allowed: {e:?}"))?;
    }
    let request = OutgoingRequest::new(fields);
    let wasi_method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_owned()),
    };
    let scheme = match parts.scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => bail!("`{url}`: the scheme `{other}` is not http or https"),
    };
    let invalid = |what: &str| anyhow!("`{url}`: its {what} is not valid");
    request.set_method(&wasi_method).map_err(|()| invalid("method"))?;
    request.set_scheme(Some(&scheme)).map_err(|()| invalid("scheme"))?;
    request.set_authority(Some(parts.authority)).map_err(|()| invalid("host"))?;
    request.set_path_with_query(Some(&parts.path_with_query)).map_err(|()| invalid("path"))?;
    let outgoing = request.body().map_err(|()| anyhow!("the request's body was taken"))?;
    let future =
        outgoing_handler::handle(request, None).map_err(|e| anyhow!("{method} {url}: {e:?}"))?;
    {
        let stream = outgoing.write().map_err(|()| anyhow!("writing the request's body"))?;
        for chunk in body.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| anyhow!("sending the body to {url}: {e:?}"))?;
        }
    }
    OutgoingBody::finish(outgoing, None).map_err(|e| anyhow!("sending to {url}: {e:?}"))?;
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => bail!("{method} {url}: {code:?}"),
        Some(Err(())) | None => bail!("{method} {url}: no response"),
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let incoming = response.consume().map_err(|()| anyhow!("reading the response of {url}"))?;
    let mut body = Vec::new();
    {
        let stream = incoming.stream().map_err(|()| anyhow!("reading the response of {url}"))?;
        loop {
            match stream.blocking_read(64 << 10) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(error)) => {
                    bail!("reading the response of {url}: {}", error.to_debug_string())
                }
            }
        }
    }
    Ok(Response { status, headers, body, url: url.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_locations_resolve_against_the_url() {
        let base = "http://127.0.0.1:8080/a/b?x=1";
        assert_eq!(join(base, "https://other.example/z").unwrap(), "https://other.example/z");
        assert_eq!(join(base, "//cdn.example/z").unwrap(), "http://cdn.example/z");
        assert_eq!(join(base, "/root").unwrap(), "http://127.0.0.1:8080/root");
        assert_eq!(join(base, "c").unwrap(), "http://127.0.0.1:8080/a/c");
        assert!(parse("no-scheme.example/path").is_err());
        let url = parse("https://api.example.com?q=1#frag").unwrap();
        assert_eq!((url.authority, url.path_with_query.as_str()), ("api.example.com", "/?q=1"));
    }
}
