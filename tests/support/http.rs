//! A minimal HTTP/1.1 keep-alive client for benchmarks: nothing between
//! the measurement and the socket but a write and a read.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark support: a failed request fails the benchmark"
)]

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive connection.
pub struct Connection {
    stream: TcpStream,
    host: String,
}

impl Connection {
    pub async fn open(address: std::net::SocketAddr) -> Self {
        let stream = TcpStream::connect(address).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self { stream, host: address.to_string() }
    }

    pub async fn call(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        self.call_with(method, path, &[], body).await
    }

    /// A call with more request headers.
    pub async fn call_with(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let extra: String =
            headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        self.stream.write_all(&[head.as_bytes(), body].concat()).await.unwrap();
        let mut response = Vec::new();
        let mut chunk = [0_u8; 16 * 1024];
        let (header_end, length) = loop {
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            response.extend_from_slice(&chunk[..n]);
            if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&response[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                break (end + 4, length);
            }
        };
        while response.len() < header_end + length {
            let n = self.stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed");
            response.extend_from_slice(&chunk[..n]);
        }
        let status = String::from_utf8_lossy(&response[9..12]).parse().unwrap();
        (status, response[header_end..header_end + length].to_vec())
    }

    pub async fn json(&mut self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let (status, bytes) = self.call(method, path, body.to_string().as_bytes()).await;
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}
