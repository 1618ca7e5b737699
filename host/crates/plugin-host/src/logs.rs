//! Guest stdout/stderr capture with a size cap.
//!
//! [`CappedPipe`] accepts every write (so a guest flooding its stdout does
//! not fail on a closed stream) but keeps only the first `cap` bytes and
//! records that the rest was dropped.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use serde::Serialize;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// What the guest wrote to stdout and stderr during one call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CapturedLogs {
    /// Captured stdout (lossy UTF-8), at most `max_log_bytes`.
    pub stdout: String,
    /// Captured stderr (lossy UTF-8), at most `max_log_bytes`.
    pub stderr: String,
    /// Whether either stream was cut at the cap.
    pub truncated: bool,
}

impl CapturedLogs {
    /// True when the guest wrote nothing.
    pub fn is_empty(&self) -> bool {
        self.stdout.is_empty() && self.stderr.is_empty()
    }
}

#[derive(Debug, Default)]
struct PipeState {
    buf: Vec<u8>,
    truncated: bool,
}

/// An in-memory output stream that keeps the first `cap` bytes.
#[derive(Debug, Clone)]
pub(crate) struct CappedPipe {
    cap: usize,
    state: Arc<Mutex<PipeState>>,
}

/// Largest write permit handed to the guest at once.
const WRITE_PERMIT: usize = 64 * 1024;

impl CappedPipe {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            state: Arc::default(),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.cap.saturating_sub(state.buf.len());
        if bytes.len() > room {
            state.truncated = true;
        }
        let keep = bytes.len().min(room);
        state.buf.extend_from_slice(&bytes[..keep]);
    }

    /// The captured text and whether it was cut.
    pub(crate) fn take(&self) -> (String, bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let buf = std::mem::take(&mut state.buf);
        let text = match String::from_utf8(buf) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        (text, state.truncated)
    }
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// The panic message in a Rust guest's stderr, if it panicked.
///
/// Rust's default hook prints
/// `thread '<unnamed>' panicked at src/lib.rs:L:C:\n<message>\nnote: ...`
/// (older toolchains: `panicked at '<message>', src/lib.rs:L:C`).
pub(crate) fn panic_message(stderr: &str) -> Option<String> {
    let start = stderr.rfind("panicked at ")?;
    let rest = &stderr[start + "panicked at ".len()..];
    // Old single-line format: panicked at 'msg', file:line:col
    if let Some(quoted) = rest.strip_prefix('\'')
        && let Some(end) = quoted.find("', ")
    {
        return Some(quoted[..end].to_string());
    }
    let (_, after_location) = rest.split_once('\n')?;
    let message: Vec<&str> = after_location
        .lines()
        .take_while(|line| !line.starts_with("note: "))
        .collect();
    let message = message.join("\n").trim().to_string();
    (!message.is_empty()).then_some(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_first_bytes_and_flags_truncation() {
        let pipe = CappedPipe::new(5);
        pipe.push(b"abc");
        pipe.push(b"defgh");
        assert_eq!(pipe.take(), ("abcde".to_string(), true));
        let pipe = CappedPipe::new(5);
        pipe.push(b"abcde");
        assert_eq!(pipe.take(), ("abcde".to_string(), false));
    }

    #[test]
    fn finds_panic_message() {
        let stderr = "log line\nthread '<unnamed>' panicked at src/lib.rs:12:9:\nhostile panic: boom\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(
            panic_message(stderr).as_deref(),
            Some("hostile panic: boom")
        );
        let multi = "thread 'main' panicked at src/lib.rs:1:1:\nline one\nline two\n";
        assert_eq!(panic_message(multi).as_deref(), Some("line one\nline two"));
        let old = "thread 'main' panicked at 'boom', src/lib.rs:1:1\n";
        assert_eq!(panic_message(old).as_deref(), Some("boom"));
        assert_eq!(panic_message("nothing to see"), None);
    }
}
