//! `odysseus secrets`: the encrypted secrets file (`config::encrypted`) as teams keep it
//! in their repository — make a key, encrypt a plain file, list what it holds (values
//! masked), edit it through `$EDITOR`. The master key comes from ODYSSEUS_MASTER_KEY and
//! is never written anywhere by odysseus.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::config::{self, encrypted, secrets_file};
use crate::exit::{print_stdout, Exit, UsageError};
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(after_help = "\
The file is deploy.yml's `secrets_file` unless --file names another. Its format is the one
the Ruby odysseus tool writes (AES-256-GCM; the key is derived from ODYSSEUS_MASTER_KEY
with PBKDF2-HMAC-SHA256), so an existing secrets.yml.enc is read unchanged.

Examples:
  export ODYSSEUS_MASTER_KEY=$(odysseus secrets generate-key)   # keep it in your vault
  odysseus secrets encrypt --input secrets.yml                  # then delete secrets.yml
  odysseus secrets decrypt
  EDITOR=vim odysseus secrets edit

Exit codes: 0 done; 2 no key, a wrong key, a changed file, or bad input (nothing written).")]
pub struct SecretsArgs {
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Subcommand, Debug)]
enum SecretsCommand {
    /// Print a new random master key (64 hex digits) for ODYSSEUS_MASTER_KEY.
    GenerateKey,
    /// Encrypt a plain secrets file (`NAME: value` or `NAME=value` lines).
    Encrypt {
        /// The plain file to encrypt.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// Where to write (default: deploy.yml's secrets_file).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// List the names the encrypted file holds, values masked.
    Decrypt {
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Edit the decrypted file in $EDITOR (a 0600 temporary file, removed afterwards),
    /// then encrypt what was saved.
    Edit {
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

pub fn run(global: &GlobalArgs, args: SecretsArgs) -> anyhow::Result<Exit> {
    match args.command {
        SecretsCommand::GenerateKey => {
            print_stdout(&format!("{}\n", encrypted::generate_key()?))?;
            Ok(Exit::Ok)
        }
        SecretsCommand::Encrypt { input, file } => {
            let key = key()?;
            let target = target(global, file)?;
            let plain = std::fs::read_to_string(&input)
                .map_err(|e| UsageError(format!("{}: cannot read: {e}", input.display())))?;
            let names = check(&plain, &input.display().to_string())?;
            let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            if same(&input, &target) {
                return Err(UsageError(format!(
                    "--input {} is the file to write: encrypt into another file (--file), then \
                     point secrets_file at it",
                    input.display()
                ))
                .into());
            }
            refuse_other_key(&target, &key)?;
            write_encrypted(&target, &plain, &key)?;
            eprintln!(
                "odysseus: {} written: {} name(s), encrypted; {} can go (it holds the values in clear)",
                target.display(),
                names,
                input.display()
            );
            Ok(Exit::Ok)
        }
        SecretsCommand::Decrypt { file } => {
            let key = key()?;
            let target = target(global, file)?;
            let map = open(&target, &key)?;
            let mut out = String::new();
            for name in map.keys() {
                out.push_str(&format!("{name}: ********\n"));
            }
            if out.is_empty() {
                out = format!("{} holds no secrets\n", target.display());
            }
            print_stdout(&out)?;
            Ok(Exit::Ok)
        }
        SecretsCommand::Edit { file } => {
            let key = key()?;
            let target = target(global, file)?;
            edit(&target, &key)
        }
    }
}

fn key() -> Result<String, UsageError> {
    encrypted::master_key(&|n| std::env::var(n).ok()).ok_or_else(|| {
        UsageError(format!(
            "{} is not set: export the master key of the secrets file (`odysseus secrets generate-key` makes a new one)",
            encrypted::MASTER_KEY_VAR
        ))
    })
}

fn target(global: &GlobalArgs, file: Option<PathBuf>) -> Result<PathBuf, UsageError> {
    if let Some(f) = file {
        return Ok(f);
    }
    config::secrets_file_of(&global.config)
        .map_err(UsageError)?
        .ok_or_else(|| {
            UsageError(format!(
                "{} names no secrets_file; add `secrets_file: secrets.yml.enc` to it, or pass --file",
                global.config.display()
            ))
        })
}

/// The names a plain secrets text holds, or where it is wrong.
fn check(plain: &str, shown: &str) -> Result<usize, UsageError> {
    secrets_file::parse_shown(plain, &format!("{shown}:"))
        .map(|m| m.len())
        .map_err(UsageError)
}

fn open(path: &Path, key: &str) -> Result<std::collections::BTreeMap<String, String>, UsageError> {
    secrets_file::read(path, Some(key)).map_err(UsageError)
}

/// An existing encrypted file that this key does not open is someone's secrets under
/// another key: never replaced silently.
fn refuse_other_key(target: &Path, key: &str) -> Result<(), UsageError> {
    let text = match std::fs::read(target) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(UsageError(format!(
                "{}: cannot read: {e}",
                target.display()
            )))
        }
    };
    if !encrypted::looks_encrypted(&text) {
        return Err(UsageError(format!(
            "{} exists and is not an encrypted secrets file (plain secrets?); nothing was written \
             (move it away first)",
            target.display()
        )));
    }
    if encrypted::decrypt(&text, key).is_err() {
        return Err(UsageError(format!(
            "{} exists and {} does not open it; nothing was written (remove it first to replace it)",
            target.display(),
            encrypted::MASTER_KEY_VAR
        )));
    }
    Ok(())
}

/// Replaced whole: a crash leaves the old file or the new one. It is meant to be
/// committed, so it is as readable as any file the user makes (0666 less the umask).
/// Encrypts what the Ruby tool reads: a YAML mapping. dotenv input is turned into one
/// (each value a double-quoted YAML scalar), so a file made here opens there too.
fn write_encrypted(target: &Path, plain: &str, key: &str) -> anyhow::Result<()> {
    let yaml = secrets_file::as_yaml(plain).map_err(|line| {
        UsageError(format!(
            "line {line}: neither a YAML mapping of NAME: value nor a NAME=value line"
        ))
    })?;
    let text = encrypted::encrypt(yaml.as_bytes(), key)?;
    odysseus::files::replace(target, text.as_bytes(), 0o666)
        .map_err(|e| UsageError(format!("writing {}: {e}", target.display())).into())
}

/// The private directory of an edit, removed whatever happens.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn edit(target: &Path, key: &str) -> anyhow::Result<Exit> {
    use std::os::unix::fs::OpenOptionsExt;
    let before = if target.exists() {
        let (text, decrypted) = secrets_file::read_text(target, Some(key)).map_err(UsageError)?;
        if !decrypted {
            // Not in the encrypted format: decrypting says where it is not.
            let why = encrypted::decrypt(&text, key)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            return Err(UsageError(format!("{}: {why}", target.display())).into());
        }
        text
    } else {
        "# NAME: value, one per line\n".to_string()
    };
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .map_err(|_| UsageError("set EDITOR (or VISUAL) to the editor to use".into()))?;
    let scratch =
        Scratch(odysseus_executors::ssh::private_dir().map_err(|e| UsageError(e.to_string()))?);
    let path = scratch.0.join("secrets.yml");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?
        .write_all(before.as_bytes())?;
    // Through sh, as git does: EDITOR may carry arguments ("code --wait").
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .map_err(|e| UsageError(format!("starting {editor}: {e}")))?;
    if !status.success() {
        return Err(UsageError(format!(
            "{editor} exited with {status}; {} was not changed",
            target.display()
        ))
        .into());
    }
    let after = std::fs::read_to_string(&path)?;
    drop(scratch);
    if after == before {
        eprintln!("odysseus: no change; {} left as it was", target.display());
        return Ok(Exit::Ok);
    }
    let names = check(&after, "the edited secrets")
        .map_err(|e| UsageError(format!("{}; {} was not changed", e.0, target.display())))?;
    write_encrypted(target, &after, key)?;
    eprintln!(
        "odysseus: {} written: {names} name(s), encrypted",
        target.display()
    );
    Ok(Exit::Ok)
}
