//! The guest's stdout and stderr: each complete line becomes a log line of
//! the run as it is written (stdout at INFO, stderr at WARN), so nothing a
//! flow prints is lost or held back, however much it prints.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use baton_proto::v1::LogLevel;
use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::host::RunLog;

/// A line longer than this is logged in pieces.
const MAX_LINE_BYTES: usize = 16 * 1024;
/// How much of the latest output is kept to explain a crash.
const TAIL_BYTES: usize = 8 * 1024;
/// What the guest may write at once (it may always write more after).
const WRITE_BUDGET: usize = 64 * 1024;

/// One of the guest's output streams.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    log: Arc<RunLog>,
    level: LogLevel,
    state: Arc<Mutex<OutputState>>,
}

#[derive(Default)]
struct OutputState {
    partial: Vec<u8>,
    tail: VecDeque<u8>,
}

impl GuestOutput {
    pub(crate) fn new(log: Arc<RunLog>, level: LogLevel) -> Self {
        Self { log, level, state: Arc::default() }
    }

    pub(crate) fn accept(&self, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.tail.extend(bytes);
        let excess = state.tail.len().saturating_sub(TAIL_BYTES);
        state.tail.drain(..excess);
        for &byte in bytes {
            if byte == b'\n' {
                self.emit(&std::mem::take(&mut state.partial));
            } else {
                state.partial.push(byte);
                if state.partial.len() >= MAX_LINE_BYTES {
                    let split = self.log.split_point(&state.partial, MAX_LINE_BYTES);
                    let rest = state.partial.split_off(split);
                    self.emit(&std::mem::replace(&mut state.partial, rest));
                }
            }
        }
    }

    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches('\r');
        if !line.trim().is_empty() {
            self.log.log(self.level, line);
        }
    }

    /// Logs what is left of an unfinished last line.
    pub(crate) fn finish(&self) {
        let partial =
            std::mem::take(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner).partial);
        self.emit(&partial);
    }

    /// The latest output, to explain how a run ended. When the window is
    /// full it may begin inside a secret that redaction could no longer
    /// recognise: as much as a secret's value less one byte is left out.
    pub(crate) fn tail(&self) -> String {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let skip = if state.tail.len() < TAIL_BYTES {
            0
        } else {
            self.log.longest_secret().saturating_sub(1)
        };
        let bytes: Vec<u8> = state.tail.iter().skip(skip).copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.accept(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_BUDGET)
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.accept(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Grants, ReportCollector};
    use baton_proto::v1::ReportBody;

    fn logged(collector: &ReportCollector) -> Vec<String> {
        collector
            .reports()
            .into_iter()
            .filter_map(|r| match r.body {
                ReportBody::Log { message, .. } => Some(message),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn lines_are_logged_as_they_complete_whatever_the_chunks() {
        let collector = Arc::new(ReportCollector::default());
        let output = GuestOutput::new(
            Arc::new(RunLog::new(collector.clone(), &Grants::default())),
            LogLevel::Info,
        );
        output.accept(b"hel");
        assert!(logged(&collector).is_empty());
        output.accept(b"lo\r\nwor");
        output.accept(b"ld\n\nlast");
        assert_eq!(logged(&collector), ["hello", "world"]);
        output.finish();
        assert_eq!(logged(&collector), ["hello", "world", "last"]);
        assert!(output.tail().ends_with("world\n\nlast"));
    }

    #[test]
    fn endless_output_is_logged_in_bounded_pieces() {
        let collector = Arc::new(ReportCollector::default());
        let output = GuestOutput::new(
            Arc::new(RunLog::new(collector.clone(), &Grants::default())),
            LogLevel::Info,
        );
        for _ in 0..100 {
            output.accept(&[b'x'; 1000]);
        }
        let lines = logged(&collector);
        assert_eq!(lines.len(), 100_000 / MAX_LINE_BYTES);
        assert!(lines.iter().all(|l| l.len() == MAX_LINE_BYTES));
        assert_eq!(output.tail().len(), TAIL_BYTES);
    }
}
