//! `secrets_file`: values for `env.secret` names, kept beside deploy.yml instead of in
//! the environment. Either a YAML mapping (`NAME: value`) or dotenv lines (`NAME=value`).
//! Errors never quote the file's content: it is all secrets.

use std::collections::BTreeMap;
use std::path::Path;

use super::raw::Scalar;

pub fn read(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8(text).map_err(|_| {
        format!(
            "{} is not UTF-8 text (an encrypted file? odysseus reads plain NAME: value or NAME=value files)",
            path.display()
        )
    })?;
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    // A one-line dotenv file like `MSG=Deploy: done` is also a YAML mapping (with the key
    // `MSG=Deploy`): YAML counts only when every key is a plain name.
    if let Ok(map) = serde_saphyr::from_str::<BTreeMap<String, Scalar>>(&text) {
        if map.keys().all(|k| is_name(k)) {
            return Ok(map.into_iter().map(|(k, Scalar(v))| (k, v)).collect());
        }
    }
    dotenv(&text).map_err(|line| {
        format!(
            "{}:{line}: neither a YAML mapping of NAME: value nor a NAME=value line",
            path.display()
        )
    })
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `NAME=value` lines; `#` comments, blank lines, an `export ` prefix and one pair of
/// surrounding quotes are allowed. Err(line number) on anything else.
fn dotenv(text: &str) -> Result<BTreeMap<String, String>, usize> {
    let mut map = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (name, value) = line.split_once('=').ok_or(n + 1)?;
        let name = name.trim();
        if !is_name(name) {
            return Err(n + 1);
        }
        let value = value.trim();
        let value = [('"', '"'), ('\'', '\'')]
            .iter()
            .find_map(|(a, b)| value.strip_prefix(*a).and_then(|v| v.strip_suffix(*b)))
            .unwrap_or(value);
        map.insert(name.to_string(), value.to_string());
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_lines_and_errors_name_the_line_never_the_value() {
        let map = dotenv("# db\nexport A=1\nB = \"two words\"\n\nC='x=y'\n").unwrap();
        assert_eq!(map["A"], "1");
        assert_eq!(map["B"], "two words");
        assert_eq!(map["C"], "x=y");
        assert_eq!(dotenv("A=1\nhunter2\n"), Err(2));
    }

    #[test]
    fn a_yaml_mapping_is_read_with_numbers_as_text() {
        let dir = std::env::temp_dir().join(format!("ody-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secrets.yml");
        std::fs::write(&file, "DATABASE_URL: postgres://x\nPIN: 1234\n").unwrap();
        let map = read(&file).unwrap();
        assert_eq!(map["PIN"], "1234");
        // One dotenv line that YAML would also read, as `{"MSG=Deploy": "done"}`.
        std::fs::write(&file, "MSG=Deploy: done\n").unwrap();
        assert_eq!(read(&file).unwrap()["MSG"], "Deploy: done");
        std::fs::write(&file, "A=1\nnot a pair: [\n").unwrap();
        let err = read(&file).unwrap_err();
        assert!(
            err.ends_with(":2: neither a YAML mapping of NAME: value nor a NAME=value line"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
