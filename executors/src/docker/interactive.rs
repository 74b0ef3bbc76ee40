//! A command the user talks to (`app shell`, `app console`, `dependency shell|exec`): this
//! process's stdin goes to it, its output comes back, over the same engine connection
//! (for a server: the SSH tunnel odysseus already holds). With a terminal on both ends it
//! gets a PTY: the local terminal is put in raw mode for the session (restored on every
//! way out) and its size follows the window.

use std::io::{IsTerminal, Read, Write};
use std::pin::Pin;

use bollard::container::LogOutput;
use futures_util::{Stream, StreamExt};
use odysseus_engine::runtime::ExecError;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::engine::Engine;

/// Whether the session gets a PTY: only when the user sits at a terminal (stdin and
/// stdout both are), as `docker run -it` decides. Piped input is passed through as bytes.
pub fn wants_tty() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// What the session runs in: a fresh one-off container, or an exec in a running one.
pub enum Target<'a> {
    Container(&'a str),
    Exec(&'a str),
}

/// Attaches this process's stdout/stderr (and stdin, with `stdin`) to `target`'s streams
/// until its output ends (the command exited). Ctrl-C without a PTY ends the session here (the caller
/// removes a one-off container); with a PTY it is a keystroke for the command.
pub async fn converse(
    engine: &Engine,
    target: Target<'_>,
    mut output: Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    mut input: Pin<Box<dyn AsyncWrite + Send>>,
    stdin: bool,
    tty: bool,
    interrupt: &mut Interrupt,
) -> Result<Ended, ExecError> {
    let _raw = if tty { RawMode::enter() } else { None };
    let mut keys = if stdin {
        stdin_chunks()
    } else {
        tokio::sync::mpsc::channel(1).1
    };
    let mut stdin_open = stdin;
    let mut resized = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        .map_err(|e| ExecError::Permanent(format!("watching the window size: {e}")))?;
    if tty {
        resize(engine, &target).await;
    }
    loop {
        tokio::select! {
            chunk = keys.recv(), if stdin_open => match chunk {
                Some(bytes) => {
                    if input.write_all(&bytes).await.and(input.flush().await).is_err() {
                        stdin_open = false;
                    }
                }
                // End of input: the command sees its stdin close (`echo ls | … shell`).
                None => {
                    let _ = input.shutdown().await;
                    stdin_open = false;
                }
            },
            item = output.next() => match item {
                Some(Ok(LogOutput::StdErr { message })) => {
                    let _ = std::io::stderr().write_all(&message);
                }
                Some(Ok(other)) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&other.into_bytes()).and_then(|_| out.flush());
                }
                Some(Err(e)) => {
                    return Err(ExecError::OutcomeUnknown(format!("the session's stream broke: {e}")))
                }
                None => return Ok(Ended::Exited),
            },
            _ = resized.recv(), if tty => resize(engine, &target).await,
            _ = interrupt.0.recv(), if !tty => return Ok(Ended::Interrupted),
        }
    }
}

/// Ctrl-C, caught from before the container exists: taken by the default action while it
/// is being made, SIGINT would end odysseus and leave the container behind.
pub struct Interrupt(tokio::signal::unix::Signal);

impl Interrupt {
    pub fn catch() -> Result<Interrupt, ExecError> {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map(Interrupt)
            .map_err(|e| ExecError::Permanent(format!("catching Ctrl-C: {e}")))
    }
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The command's output ended: it exited (ask the engine for its code).
    Exited,
    /// Ctrl-C here, without a PTY.
    Interrupted,
}

async fn resize(engine: &Engine, target: &Target<'_>) {
    let Some((rows, cols)) = window_size() else {
        return;
    };
    // A failed resize leaves the default 80x24: not worth stopping the session for.
    let _ = match target {
        Target::Container(name) => {
            engine
                .docker()
                .resize_container_tty(
                    name,
                    bollard::query_parameters::ResizeContainerTTYOptions {
                        h: i32::from(rows),
                        w: i32::from(cols),
                    },
                )
                .await
        }
        Target::Exec(id) => {
            engine
                .docker()
                .resize_exec(
                    id,
                    bollard::query_parameters::ResizeExecOptions {
                        h: i32::from(rows),
                        w: i32::from(cols),
                    },
                )
                .await
        }
    };
}

/// Stdin read on a thread of its own: a blocking read would otherwise keep the runtime
/// from shutting down when the session ends before the user's input does.
fn stdin_chunks() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// (rows, columns) of the terminal on stdout.
fn window_size() -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_row > 0 && size.ws_col > 0).then_some((size.ws_row, size.ws_col))
}

/// The terminal in raw mode (every key goes to the remote PTY, which does its own echo
/// and line editing) until dropped.
struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        // SAFETY: tcgetattr/tcsetattr on stdin with termios structs we own.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw) != 0 {
                return None;
            }
            Some(RawMode { saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `enter`.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved);
        }
    }
}

/// Runs `cmd` in the running container `container` (`docker exec`), with this process's
/// input when `stdin` (on a PTY at a terminal); its exit code, or 130 after Ctrl-C.
pub async fn exec_in(
    engine: &Engine,
    container: &str,
    cmd: Vec<String>,
    stdin: bool,
) -> Result<i64, ExecError> {
    use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
    let mut interrupt = Interrupt::catch()?;
    let tty = stdin && wants_tty();
    let what = format!("running {} in {container}", cmd.join(" "));
    let created = engine
        .docker()
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd),
                attach_stdin: Some(stdin),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(tty),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| match e {
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                message,
            } => ExecError::Permanent(format!("{container} is not running: {message}")),
            e => ExecError::Retryable(format!("{what}: {e}")),
        })?;
    let started = engine
        .docker()
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                tty,
                output_capacity: None,
            }),
        )
        .await
        .map_err(|e| ExecError::Retryable(format!("{what}: {e}")))?;
    let StartExecResults::Attached { output, input } = started else {
        return Err(ExecError::Permanent(format!(
            "{what}: the engine did not attach"
        )));
    };
    if converse(
        engine,
        Target::Exec(&created.id),
        output,
        input,
        stdin,
        tty,
        &mut interrupt,
    )
    .await?
        == Ended::Interrupted
    {
        return Ok(super::oneoff::INTERRUPTED);
    }
    let inspected = engine
        .docker()
        .inspect_exec(&created.id)
        .await
        .map_err(|e| ExecError::OutcomeUnknown(format!("{what}: {e}")))?;
    Ok(inspected.exit_code.unwrap_or(-1))
}
