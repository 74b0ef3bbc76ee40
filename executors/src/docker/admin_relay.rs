//! Caddy's admin API reached through the Docker engine, never over a network.
//!
//! Caddy's admin API listens on the loopback of its own container (`127.0.0.1:2019`),
//! which no other container can reach (every app and dependency shares the `odysseus`
//! network with Caddy, so an address on it would hand them every route). odysseus reaches
//! it by running `nc 127.0.0.1 2019` in the Caddy container (a Docker exec) and speaking
//! HTTP/1.1 over that process's stdin and stdout: whoever may do this already controls
//! the Docker engine, locally or through the SSH-forwarded Docker socket, so the admin
//! API is exactly as reachable as the engine is, and no port or file is exposed for it.
//! One such connection is kept per host and opened again when it closes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::Docker;
use bytes::Bytes;
use futures_util::Stream;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use odysseus_engine::runtime::ExecError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where Caddy's admin API listens inside its container.
pub const ADMIN_LISTEN: &str = "127.0.0.1:2019";

/// The stdin and stdout of a process in a container, as one byte stream.
struct ExecStream {
    output: Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    input: Pin<Box<dyn AsyncWrite + Send>>,
    pending: Bytes,
}

impl AsyncRead for ExecStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                let chunk = self.pending.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            match self.output.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                // The process ended: the connection is closed.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(io::Error::other(e.to_string())))
                }
                Poll::Ready(Some(Ok(LogOutput::StdOut { message }))) => self.pending = message,
                Poll::Ready(Some(Ok(LogOutput::Console { message }))) => self.pending = message,
                // nc's complaints (e.g. "can't connect"): the stream just ends after them.
                Poll::Ready(Some(Ok(_))) => {}
            }
        }
    }
}

impl AsyncWrite for ExecStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.input.as_mut().poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.input.as_mut().poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.input.as_mut().poll_shutdown(cx)
    }
}

/// Opens one HTTP/1.1 connection to the admin API of the Caddy in `container`.
pub async fn connect(
    docker: &Docker,
    container: &str,
) -> Result<SendRequest<Full<Bytes>>, ExecError> {
    let (host, port) = ADMIN_LISTEN.split_once(':').expect("host:port");
    let what = |e: &dyn std::fmt::Display| {
        ExecError::OutcomeUnknown(format!("reaching Caddy's admin API in {container}: {e}"))
    };
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(vec!["nc", host, port]),
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| {
            ExecError::Retryable(format!("reaching Caddy's admin API in {container}: {e}"))
        })?;
    let StartExecResults::Attached { output, input } = docker
        .start_exec(&created.id, None)
        .await
        .map_err(|e| what(&e))?
    else {
        return Err(what(&"the exec did not attach"));
    };
    let io = hyper_util::rt::TokioIo::new(ExecStream {
        output,
        input,
        pending: Bytes::new(),
    });
    let (sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| what(&e))?;
    tokio::spawn(async move {
        // Ends when either side closes; the next request opens another connection.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Whether the Caddy container cannot run `nc` (an image without it): asked after the
/// relay failed, so the error names the cause instead of a garbled HTTP exchange.
pub async fn nc_missing(docker: &Docker, container: &str) -> bool {
    let Ok(created) = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(vec!["nc", "-h"]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
    else {
        return false;
    };
    let mut said = String::new();
    if let Ok(StartExecResults::Attached { mut output, .. }) =
        docker.start_exec(&created.id, None).await
    {
        use futures_util::StreamExt;
        while let Some(Ok(chunk)) = output.next().await {
            said.push_str(&chunk.to_string());
        }
    }
    said.contains("executable file not found") || said.contains("no such file or directory")
}

/// The error for a Caddy image without `nc`.
pub fn nc_missing_error(container: &str) -> ExecError {
    ExecError::Permanent(format!(
        "the {container} container has no `nc`: odysseus reaches Caddy's admin API by running `nc 127.0.0.1 2019` in it (its admin API listens on that container's loopback only). \
         Use caddy:2-alpine (proxy.image), or an image with busybox"
    ))
}
