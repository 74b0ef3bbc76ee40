//! What odysseus records or prints from the outside world (a container's last lines, an
//! engine's or a server's error) is cleaned first: every secret value of the deployment
//! replaced by its name, and control characters (terminal escapes, carriage returns)
//! removed, so an app that logs its `DATABASE_URL` does not put it in the journal.

use odysseus_engine::runtime::ExecError;

/// Secret values shorter than this are not looked for: replacing every "1" or "ab" would
/// shred the text, and such a value protects nothing.
pub const MIN_SECRET_LEN: usize = 4;

pub fn clean(text: &str, secrets: &[(String, String)]) -> String {
    hide(text, secrets)
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// Every secret value in `text` replaced by its name; nothing else changes.
fn hide(text: &str, secrets: &[(String, String)]) -> String {
    let mut values: Vec<&(String, String)> = secrets
        .iter()
        .filter(|(_, v)| v.len() >= MIN_SECRET_LEN)
        .collect();
    // Longest first: a secret that contains another is replaced whole.
    values.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
    let mut out = text.to_string();
    for (name, value) in values {
        if out.contains(value.as_str()) {
            out = out.replace(value.as_str(), &format!("[secret {name}]"));
        }
    }
    out
}

/// The secret values this process was handed (set once the config is read).
static KNOWN: std::sync::RwLock<Vec<(String, String)>> = std::sync::RwLock::new(Vec::new());

/// Remembers the secret values of the config this process runs with, so that whatever
/// it prints — an error from anywhere (a pull, `dependency boot`, a lock), a diagnostic —
/// passes through [`hide_known`] at the one place it leaves the process.
pub fn remember(secrets: &[(String, String)]) {
    let mut known = KNOWN.write().unwrap_or_else(|p| p.into_inner());
    for (name, value) in secrets {
        // A multi-line value (a PEM key) is printed line by line by whatever echoes it:
        // each of its lines is a secret of its own (short ones would hide common words).
        let lines = value
            .lines()
            .map(str::trim)
            .filter(|l| value.contains('\n') && l.len() >= 8)
            .map(|l| (name.clone(), l.to_string()));
        for s in std::iter::once((name.clone(), value.clone())).chain(lines) {
            if !known.contains(&s) {
                known.push(s);
            }
        }
    }
}

/// `text` with every remembered secret value replaced by its name. Control characters
/// stay: this is for odysseus's own output, which may colour or redraw a line.
pub fn hide_known(text: &str) -> String {
    let known = KNOWN.read().unwrap_or_else(|p| p.into_inner());
    if known.is_empty() {
        return text.to_string();
    }
    hide(text, &known)
}

/// The same error, its message cleaned.
pub fn clean_error(e: ExecError, secrets: &[(String, String)]) -> ExecError {
    e.map_message(|m| clean(&m, secrets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_become_their_names_and_escapes_go() {
        let secrets = vec![
            (
                "DATABASE_URL".to_string(),
                "postgres://u:hunter22@db/app".to_string(),
            ),
            ("PASSWORD".to_string(), "hunter22".to_string()),
            ("SHORT".to_string(), "ab".to_string()),
        ];
        let logs = "boot\r\n\u{1b}[31mDATABASE_URL=postgres://u:hunter22@db/app\u{1b}[0m\nretry with hunter22\tab\n";
        let cleaned = clean(logs, &secrets);
        assert_eq!(
            cleaned,
            "boot\n[31mDATABASE_URL=[secret DATABASE_URL][0m\nretry with [secret PASSWORD]\tab\n"
        );
        assert!(!cleaned.contains("hunter22"));
        let e = clean_error(ExecError::Permanent("x hunter22".into()), &secrets);
        assert_eq!(e, ExecError::Permanent("x [secret PASSWORD]".into()));
    }

    #[test]
    fn remembered_secrets_are_hidden_and_colours_kept() {
        remember(&[("API_KEY".to_string(), "sk-live-123456".to_string())]);
        assert_eq!(
            hide_known("\u{1b}[31mpull failed: token sk-live-123456\u{1b}[0m"),
            "\u{1b}[31mpull failed: token [secret API_KEY]\u{1b}[0m"
        );
    }
}
