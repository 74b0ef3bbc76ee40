//! What odysseus records or prints from the outside world (a container's last lines, an
//! engine's or a server's error) is cleaned first: every secret value of the deployment
//! replaced by its name, and control characters (terminal escapes, carriage returns)
//! removed, so an app that logs its `DATABASE_URL` does not put it in the journal.

use odysseus_engine::runtime::ExecError;

/// Secret values shorter than this are not looked for: replacing every "1" or "ab" would
/// shred the text, and such a value protects nothing.
pub const MIN_SECRET_LEN: usize = 4;

pub fn clean(text: &str, secrets: &[(String, String)]) -> String {
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
    out.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// The same error, its message cleaned.
pub fn clean_error(e: ExecError, secrets: &[(String, String)]) -> ExecError {
    match e {
        ExecError::Retryable(m) => ExecError::Retryable(clean(&m, secrets)),
        ExecError::Permanent(m) => ExecError::Permanent(clean(&m, secrets)),
        ExecError::OutcomeUnknown(m) => ExecError::OutcomeUnknown(clean(&m, secrets)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_become_their_names_and_escapes_go() {
        let secrets = vec![
            ("DATABASE_URL".to_string(), "postgres://u:hunter22@db/app".to_string()),
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
}
