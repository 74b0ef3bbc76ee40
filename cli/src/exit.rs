//! Exit codes and the last line of defence: errors become one clear message, never a
//! backtrace.

use std::io::Write;

/// Documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done.
    Ok = 0,
    /// 1: the deployment failed, was rolled back, or an invariant was violated.
    Failed = 1,
    /// 2: bad usage or config.
    Usage = 2,
    /// 3: interrupted or blocked by the environment (lock held, host down); the message
    /// says what to run next.
    Blocked = 3,
    /// 70: a bug in odysseus (the log and the code disagree, a panic).
    Internal = 70,
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
