//! `odysseus secrets` and encrypted `secrets_file`s, through the binary: a key made, a
//! plain file encrypted, names listed with masked values, an edit through $EDITOR on a
//! private temporary file, deploy.yml's secrets resolved from the encrypted file — and a
//! missing key, a wrong key and a changed file each refused with exit 2, never an empty
//! value. The Ruby tool's format is checked against files written by Python's
//! `cryptography` (tests/vectors, read by the parser's unit test and here through
//! `validate`).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::ScratchDir;

const CONFIG: &str = "service: sec
image: example/sec
secrets_file: secrets.yml.enc
servers:
  web:
    hosts: [local]
proxy:
  hosts: [sec.test]
  app_port: 3000
env:
  secret: [DATABASE_URL, API_TOKEN]
";

fn odysseus(dir: &Path, key: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(support::odysseus_bin());
    cmd.args(args)
        .arg("-c")
        .arg(dir.join("deploy.yml"))
        .env_remove("ODYSSEUS_MASTER_KEY")
        .env_remove("DATABASE_URL")
        .env_remove("API_TOKEN");
    if let Some(k) = key {
        cmd.env("ODYSSEUS_MASTER_KEY", k);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// secrets.yml.enc beside deploy.yml, holding DATABASE_URL, encrypted under `key`.
fn encrypt_one_secret(dir: &Path, key: &str) {
    let plain = dir.join("plain.yml");
    std::fs::write(&plain, "DATABASE_URL: postgres://u:pa55word-x@db/app\n").unwrap();
    let out = odysseus(
        dir,
        Some(key),
        &["secrets", "encrypt", "--input", plain.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

fn setup() -> (ScratchDir, PathBuf) {
    let dir = ScratchDir::new("secrets-cli");
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(dir.path().join("deploy.yml"), CONFIG).unwrap();
    let enc = dir.path().join("secrets.yml.enc");
    (dir, enc)
}

#[test]
fn a_key_is_made_a_file_encrypted_listed_masked_and_read_by_deploy_yml() {
    let (dir, enc) = setup();
    let out = odysseus(dir.path(), None, &["secrets", "generate-key"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(
        key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit()),
        "{key}"
    );

    let plain = dir.path().join("plain.yml");
    std::fs::write(
        &plain,
        "DATABASE_URL: postgres://u:pa55word-x@db/app\nAPI_TOKEN: tok_0123456789\n",
    )
    .unwrap();
    let out = odysseus(
        dir.path(),
        Some(&key),
        &["secrets", "encrypt", "--input", plain.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(&enc).unwrap();
    assert!(
        !written.contains("pa55word") && !written.contains("tok_0123"),
        "{written}"
    );
    assert!(written.starts_with('#'), "{written}");

    let out = odysseus(dir.path(), Some(&key), &["secrets", "decrypt"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "API_TOKEN: ********\nDATABASE_URL: ********\n"
    );
    assert!(!text(&out).contains("pa55word"));

    let out = odysseus(dir.path(), Some(&key), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Encrypting a file onto itself, or over a plain file, would lose the values: refused.
    let out = odysseus(
        dir.path(),
        Some(&key),
        &[
            "secrets",
            "encrypt",
            "--input",
            enc.to_str().unwrap(),
            "--file",
            enc.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let other = dir.path().join("other.yml");
    std::fs::write(&other, "A: 1\n").unwrap();
    let out = odysseus(
        dir.path(),
        Some(&key),
        &[
            "secrets",
            "encrypt",
            "--input",
            plain.to_str().unwrap(),
            "--file",
            other.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not an encrypted secrets file"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&other).unwrap(), "A: 1\n");
    assert_eq!(
        std::fs::read_to_string(&enc).unwrap(),
        written,
        "the file was replaced"
    );

    // Encrypting again under another key would lose the file's secrets: refused.
    let out = odysseus(
        dir.path(),
        Some("another-key"),
        &["secrets", "encrypt", "--input", plain.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(&enc).unwrap(),
        written,
        "the file was replaced"
    );
}

#[test]
fn no_key_a_wrong_key_a_changed_file_and_a_missing_name_are_refused_with_exit_2_by_deploy() {
    let (dir, enc) = setup();
    let key = "k-0123456789";
    encrypt_one_secret(dir.path(), key);

    // validate checks the file, not this machine: without the key it warns and passes;
    // a deploy refuses.
    let out = odysseus(dir.path(), None, &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("secrets.yml.enc is encrypted and ODYSSEUS_MASTER_KEY is not set here"),
        "{}",
        text(&out)
    );
    let out = odysseus(dir.path(), None, &["deploy", "--image", "v1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("is encrypted: set ODYSSEUS_MASTER_KEY"),
        "{}",
        text(&out)
    );

    let out = odysseus(dir.path(), Some("k-wrong"), &["validate"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("does not open it"), "{}", text(&out));
    let out = odysseus(dir.path(), Some("k-wrong"), &["secrets", "decrypt"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // API_TOKEN is in env.secret but in no source: an error naming it, not an empty value.
    let out = odysseus(dir.path(), Some(key), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("API_TOKEN has no value on this machine"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("pa55word"), "{}", text(&out));
    let out = odysseus(dir.path(), Some(key), &["deploy", "--image", "v1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("API_TOKEN is not set"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("pa55word"), "{}", text(&out));

    // One character of the ciphertext changed.
    let original = std::fs::read_to_string(&enc).unwrap();
    let mut lines: Vec<String> = original.lines().map(str::to_string).collect();
    let last = lines.last_mut().unwrap();
    let c = if last.starts_with('A') { "B" } else { "A" };
    last.replace_range(0..1, c);
    std::fs::write(&enc, lines.join("\n") + "\n").unwrap();
    let out = odysseus(dir.path(), Some(key), &["secrets", "decrypt"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("was changed"), "{}", text(&out));
}

/// The editor sees the decrypted text in a 0600 file of a private directory; what it saves
/// is encrypted back; the file is gone afterwards.
#[test]
fn edit_goes_through_the_editor_on_a_private_file_that_is_removed() {
    let (dir, enc) = setup();
    let key = "k-edit-0123";
    encrypt_one_secret(dir.path(), key);
    let seen = dir.path().join("seen");
    let editor = dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        format!(
            "#!/bin/sh\nstat -c '%a %n' \"$1\" > {seen}\nstat -c '%a' \"$(dirname \"$1\")\" >> {seen}\ncat \"$1\" >> {seen}\necho 'API_TOKEN: tok_added_42' >> \"$1\"\n",
            seen = seen.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&editor)
        .status()
        .unwrap();
    let out = Command::new(support::odysseus_bin())
        .args(["secrets", "edit", "-c"])
        .arg(dir.path().join("deploy.yml"))
        .env("ODYSSEUS_MASTER_KEY", key)
        .env("EDITOR", &editor)
        .env_remove("VISUAL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let seen = std::fs::read_to_string(&seen).unwrap();
    let mut lines = seen.lines();
    let first: Vec<&str> = lines.next().unwrap().split(' ').collect();
    assert_eq!(first[0], "600", "{seen}");
    assert_eq!(lines.next(), Some("700"), "{seen}");
    assert!(
        seen.contains("DATABASE_URL: postgres://u:pa55word-x@db/app"),
        "{seen}"
    );
    assert!(
        !Path::new(first[1]).exists(),
        "the decrypted file was left at {}",
        first[1]
    );
    let out = odysseus(dir.path(), Some(key), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!std::fs::read_to_string(&enc).unwrap().contains("tok_added"));
}

/// A secrets.yml.enc written by another implementation of the Ruby tool's format (Python's
/// `cryptography`), with Ruby-symbol keys, resolves deploy.yml's secrets unchanged.
#[test]
fn a_file_written_by_another_implementation_resolves_deploy_yml_secrets() {
    let (dir, _) = setup();
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors");
    std::fs::copy(
        vectors.join("secrets-symbols.yml.enc"),
        dir.path().join("secrets.yml.enc"),
    )
    .unwrap();
    let key = std::fs::read_to_string(vectors.join("master.key")).unwrap();
    let out = odysseus(dir.path(), Some(&key), &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = odysseus(dir.path(), Some(&key), &["secrets", "decrypt"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "API_TOKEN: ********\nDATABASE_URL: ********\n"
    );
}
