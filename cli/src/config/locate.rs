//! Where a key sits in deploy.yml, so a problem found after parsing (a bad value, a
//! missing secret) still names its line.
//!
//! The typed parse keeps no positions, so this reads the text again: block mappings by
//! indentation, which is how deploy.yml files are written. A key inside a flow mapping
//! (`{ a: 1 }`) is found at the line of its nearest enclosing block key.

use std::collections::HashMap;

pub struct KeyLines {
    lines: HashMap<String, usize>,
}

impl KeyLines {
    pub fn scan(text: &str) -> KeyLines {
        let mut lines = HashMap::new();
        // (indent, key) of the block keys enclosing the current line.
        let mut stack: Vec<(usize, String)> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let trimmed = raw.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
                continue;
            }
            let mut indent = raw.len() - trimmed.len();
            let mut rest = trimmed;
            // `- key: value` opens a mapping inside a sequence item, one level deeper.
            while let Some(after) = rest.strip_prefix("- ") {
                indent += 2;
                rest = after.trim_start();
            }
            let Some(key) = block_key(rest) else {
                continue;
            };
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
            stack.push((indent, key));
            let path = stack
                .iter()
                .map(|(_, k)| k.as_str())
                .collect::<Vec<_>>()
                .join(".");
            lines.entry(path).or_insert(n + 1);
        }
        KeyLines { lines }
    }

    /// The line of `path` (`servers.web.deploy.boot_timeout`), or of its closest
    /// enclosing key that is written in the file.
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut path = path;
        loop {
            if let Some(line) = self.lines.get(path) {
                return Some(*line);
            }
            path = path.rsplit_once('.')?.0;
        }
    }
}

/// `key:` or `key: value` at the start of `s` (plain or quoted key).
fn block_key(s: &str) -> Option<String> {
    let (key, after) = if let Some(q) = s.strip_prefix('"').or_else(|| s.strip_prefix('\'')) {
        let quote = s.chars().next()?;
        let end = q.find(quote)?;
        (q[..end].to_string(), &q[end + 1..])
    } else {
        let end = s.find(':')?;
        let key = &s[..end];
        if key.is_empty() || key.contains(['{', '[', '#', '"', '\'']) || key.contains(": ") {
            return None;
        }
        (key.trim_end().to_string(), &s[end..])
    };
    let after = after.strip_prefix(':')?;
    (after.is_empty() || after.starts_with([' ', '\t'])).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
# comment
service: app
servers:
  web:
    hosts: [a, b]
    deploy:
      boot_timeout: 0
  'jobs':
    hosts:
      - c
proxy: { app_port: 3000 }
env:
  secret:
    - KEY
";

    #[test]
    fn nested_keys_find_their_own_line_and_flow_keys_their_parent() {
        let k = KeyLines::scan(YAML);
        assert_eq!(k.line("service"), Some(2));
        assert_eq!(k.line("servers.web.deploy.boot_timeout"), Some(7));
        assert_eq!(k.line("servers.jobs.hosts"), Some(9));
        assert_eq!(k.line("proxy.app_port"), Some(11));
        assert_eq!(k.line("env.secret"), Some(13));
        assert_eq!(k.line("servers.web.options.memory"), Some(4));
        assert_eq!(k.line("nowhere"), None);
    }
}
