//! Exit codes and the last line of defence: errors become one clear message, never a
//! backtrace.

use std::io::Write;

/// Documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Ok,
    /// 1: the deployment failed, was rolled back, or an invariant was violated.
    Failed,
    /// 2: bad usage or config.
    Usage,
    /// 3: interrupted or blocked by the environment (lock held, host down); the message
    /// says what to run next.
    Blocked,
    /// 70: a bug in odysseus (the log and the code disagree, a panic).
    Internal,
    /// A one-off command's own exit code, passed through.
    Code(u8),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::Blocked => 3,
            Exit::Internal => 70,
            Exit::Code(c) => c,
        }
    }
}

/// The user asked for something that cannot be done as written.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Prints to stdout; a closed pipe (`odysseus … | head`) is not an error.
pub fn print_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
