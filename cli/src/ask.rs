//! Asking before something that cannot be taken back (`dependency upgrade`, `cleanup`):
//! on a terminal the user types yes; anywhere else `--yes` must say it up front, so a CI
//! job never hangs on a question nobody sees.

use std::io::{BufRead, IsTerminal, Write};

use crate::exit::UsageError;

/// `Ok(true)` to go on: `yes` given, or the user answered y/yes on the terminal.
/// Without a terminal and without `yes`, a usage error naming the flag.
pub fn confirm(question: &str, yes: bool) -> Result<bool, UsageError> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(format!(
            "{question} — not asked without a terminal: pass --yes to go on"
        )));
    }
    let mut err = std::io::stderr();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return Ok(false);
    }
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
