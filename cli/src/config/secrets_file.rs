//! `secrets_file`: values for `env.secret` names, kept beside deploy.yml instead of in
//! the environment. Either a YAML mapping (`NAME: value`) or dotenv lines (`NAME=value`).
//! Errors never quote the file's content: it is all secrets.

use std::collections::BTreeMap;
use std::path::Path;

use super::encrypted;
use super::raw::Scalar;

/// Reads the file; one in the encrypted format (`encrypted`) is opened with `master_key`
/// (from ODYSSEUS_MASTER_KEY) first.
pub fn read(path: &Path, master_key: Option<&str>) -> Result<BTreeMap<String, String>, String> {
    let (text, decrypted) = read_text(path, master_key)?;
    let shown = if decrypted {
        format!("{} (decrypted), line ", path.display())
    } else {
        format!("{}:", path.display())
    };
    parse_shown(&text, &shown)
}

/// The file's text, decrypted when it is encrypted (and whether it was).
pub fn read_text(path: &Path, master_key: Option<&str>) -> Result<(String, bool), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        format!(
            "{} is not UTF-8 text (odysseus reads NAME: value or NAME=value files, or files \
             encrypted by `odysseus secrets encrypt`)",
            path.display()
        )
    })?;
    if !encrypted::looks_encrypted(&text) {
        return Ok((text, false));
    }
    let Some(key) = master_key else {
        return Err(format!(
            "{} is encrypted: set {} to its master key",
            path.display(),
            encrypted::MASTER_KEY_VAR
        ));
    };
    let plain = encrypted::decrypt(&text, key).map_err(|e| format!("{}: {e}", path.display()))?;
    let plain = String::from_utf8(plain).map_err(|_| {
        format!(
            "{}: decrypted, but what it holds is not UTF-8 text",
            path.display()
        )
    })?;
    Ok((plain, true))
}

/// [`parse`], its error placed after `shown` (a file name and `:`, say).
pub fn parse_shown(text: &str, shown: &str) -> Result<BTreeMap<String, String>, String> {
    parse(text).map_err(|line| {
        format!("{shown}{line}: neither a YAML mapping of NAME: value nor a NAME=value line")
    })
}

/// A YAML mapping (keys as strings or as Ruby symbols, `:NAME`) or dotenv lines;
/// Err(line number).
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, usize> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    // A one-line dotenv file like `MSG=Deploy: done` is also a YAML mapping (with the key
    // `MSG=Deploy`): YAML counts only when every key is a plain name.
    if let Ok(map) = serde_saphyr::from_str::<BTreeMap<String, Scalar>>(text) {
        let map: BTreeMap<String, String> = map
            .into_iter()
            .map(|(k, Scalar(v))| (k.strip_prefix(':').unwrap_or(&k).to_string(), v))
            .collect();
        if map.keys().all(|k| is_name(k)) {
            return Ok(map);
        }
    }
    dotenv(text)
}

/// The same secrets as a YAML mapping: YAML text as it is (comments, symbol keys and all),
/// dotenv lines rewritten as `NAME: "value"` (JSON string escapes are YAML's
/// double-quoted ones). Err(line number) when it is neither.
pub fn as_yaml(text: &str) -> Result<String, usize> {
    let map = parse(text)?;
    let is_yaml = serde_saphyr::from_str::<BTreeMap<String, Scalar>>(text)
        .is_ok_and(|m| m.keys().all(|k| is_name(k.strip_prefix(':').unwrap_or(k))));
    if is_yaml || text.trim().is_empty() {
        return Ok(text.to_string());
    }
    Ok(map
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", serde_json::Value::String(v.clone())))
        .collect())
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// dotenv lines, read by `dotenvy` (comments, `export `, quotes, multi-line quoted values,
/// `${VAR}` expansion as the dotenv tools do). Err(line number) of the first line it cannot
/// read — found by its text, which never leaves this function (it may hold a value).
fn dotenv(text: &str) -> Result<BTreeMap<String, String>, usize> {
    let mut map = BTreeMap::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((name, value)) => {
                if !is_name(&name) {
                    return Err(line_of(text, &name));
                }
                map.insert(name, value);
            }
            Err(dotenvy::Error::LineParse(line, _)) => return Err(line_of(text, &line)),
            Err(_) => return Err(1),
        }
    }
    Ok(map)
}

/// The 1-based number of the first line of `text` where `fragment`'s first line appears.
fn line_of(text: &str, fragment: &str) -> usize {
    let first = fragment.lines().next().unwrap_or("").trim();
    text.lines()
        .position(|l| !first.is_empty() && l.contains(first))
        .map_or(1, |n| n + 1)
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
        // dotenvy's rules: an unquoted value has no spaces; quoted ones may span lines.
        assert_eq!(dotenv("A=1\nB=two words\n"), Err(2));
        assert_eq!(
            dotenv("K=\"line one\nline two\"\n").unwrap()["K"],
            "line one\nline two"
        );
    }

    #[test]
    fn dotenv_becomes_yaml_that_reads_back_the_same_and_yaml_stays_as_written() {
        let env = "A=1\nB=\"two words: \\\"quoted\\\" #x\"\nC='multi\nline'\n";
        let yaml = as_yaml(env).unwrap();
        assert!(yaml.starts_with("A: \"1\"\n"), "{yaml}");
        assert_eq!(parse(&yaml).unwrap(), parse(env).unwrap());
        let written = "# comment\n:A: 1\n";
        assert_eq!(as_yaml(written).unwrap(), written);
    }

    #[test]
    fn a_yaml_mapping_is_read_with_numbers_as_text() {
        let dir = std::env::temp_dir().join(format!("ody-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secrets.yml");
        std::fs::write(&file, "DATABASE_URL: postgres://x\nPIN: 1234\n").unwrap();
        let map = read(&file, None).unwrap();
        assert_eq!(map["PIN"], "1234");
        // One dotenv line that YAML would also read, as `{"MSG=\"Deploy": "done\""}`.
        std::fs::write(&file, "MSG=\"Deploy: done\"\n").unwrap();
        assert_eq!(read(&file, None).unwrap()["MSG"], "Deploy: done");
        std::fs::write(&file, "A=1\nnot a pair: [\n").unwrap();
        let err = read(&file, None).unwrap_err();
        assert!(
            err.ends_with(":2: neither a YAML mapping of NAME: value nor a NAME=value line"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Files written by Python's `cryptography` the way the Ruby tool writes them
    /// (tests/vectors/make_secrets_enc.py): keys as strings and as Ruby symbols.
    #[test]
    fn files_encrypted_by_another_implementation_are_read_unchanged() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
        let key = std::fs::read_to_string(dir.join("master.key")).unwrap();
        let key = key.trim();
        let strings = read(&dir.join("secrets-strings.yml.enc"), Some(key)).unwrap();
        assert_eq!(
            strings["DATABASE_URL"],
            "postgres://app:s3cr3t-pw@db.internal:5432/app"
        );
        assert_eq!(
            strings["RAILS_MASTER_KEY"],
            "0123456789abcdef0123456789abcdef"
        );
        assert_eq!(strings["PIN"], "1234");
        let symbols = read(&dir.join("secrets-symbols.yml.enc"), Some(key)).unwrap();
        assert_eq!(
            symbols["DATABASE_URL"],
            "postgres://app:other-pw@db.internal:5432/app"
        );
        assert_eq!(symbols["API_TOKEN"], "tok_live_42");
        let missing = read(&dir.join("secrets-strings.yml.enc"), None).unwrap_err();
        assert!(
            missing.contains("is encrypted: set ODYSSEUS_MASTER_KEY"),
            "{missing}"
        );
        let wrong = read(&dir.join("secrets-strings.yml.enc"), Some("not-the-key")).unwrap_err();
        assert!(wrong.contains("does not open it"), "{wrong}");
        assert!(!wrong.contains("s3cr3t"), "{wrong}");
    }
}
