//! What the journal keeps of secret values: a keyed digest (HMAC-SHA-256) over the
//! secrets' names and values, so `replay` shows that a value changed between deployments
//! without the value being recoverable. The key is random, made once per state dir and
//! kept beside the journal (mode 0600): without it, a leaked journal or `--json` output
//! does not let anyone test guesses of a short secret against the digest.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use sha2::Sha256;

/// `hmac-sha256:<16 hex>` over the sorted `name\0value\0` pairs; None without secrets.
pub fn secrets_digest(
    state_dir: &Path,
    names: &[String],
    env: &BTreeMap<String, String>,
) -> std::io::Result<Option<String>> {
    if names.is_empty() {
        return Ok(None);
    }
    let key = key(state_dir)?;
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut message = Vec::new();
    for name in sorted {
        message.extend_from_slice(name.as_bytes());
        message.push(0);
        message.extend_from_slice(env.get(name).map(String::as_bytes).unwrap_or_default());
        message.push(0);
    }
    let mac = hmac_sha256(&key, &message);
    let hex: String = mac[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok(Some(format!("hmac-sha256:{hex}")))
}

/// The state dir's digest key, made on first use. Two deploys of different services can
/// share a state dir: the key is written whole to a temporary file and linked into place,
/// so a racing second one reads the winner's key instead of a half-written or replaced one.
fn key(state_dir: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt;
    let path = state_dir.join("secrets.key");
    let existing = |path: &Path| -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(key) if key.len() == 32 => {
                // Tighten a key file that was copied in with looser permissions.
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                Ok(Some(key))
            }
            Ok(_) => Err(std::io::Error::other(format!(
                "{} is not a 32-byte key; remove it to make a new one",
                path.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    };
    if let Some(key) = existing(&path)? {
        return Ok(key);
    }
    let key = odysseus::files::random_bytes::<32>()?.to_vec();
    std::fs::create_dir_all(state_dir)?;
    let temp = state_dir.join(format!("secrets.key.{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(&temp)?.write_all(&key)?;
    let linked = std::fs::hard_link(&temp, &path);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => existing(&path)?
            .ok_or_else(|| std::io::Error::other("secrets.key vanished while being made")),
        Err(e) => Err(e),
    }
}

/// HMAC (RFC 2104) with SHA-256, from RustCrypto.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2 of RFC 4231.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn the_digest_is_stable_per_state_dir_and_changes_with_a_value() {
        let dir = std::env::temp_dir().join(format!("ody-digest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let names = vec!["B".to_string(), "A".to_string()];
        let env = |a: &str| {
            BTreeMap::from([
                ("A".to_string(), a.to_string()),
                ("B".to_string(), "b".to_string()),
            ])
        };
        let one = secrets_digest(&dir, &names, &env("1")).unwrap().unwrap();
        assert_eq!(
            secrets_digest(&dir, &names, &env("1")).unwrap().unwrap(),
            one
        );
        assert_ne!(
            secrets_digest(&dir, &names, &env("2")).unwrap().unwrap(),
            one
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("secrets.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Another state dir has another key: the same values digest differently.
        let other = dir.join("other");
        assert_ne!(
            secrets_digest(&other, &names, &env("1")).unwrap().unwrap(),
            one
        );
        assert_eq!(secrets_digest(&dir, &[], &env("1")).unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
