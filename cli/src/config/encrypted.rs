//! Secrets files encrypted as the Ruby odysseus tool writes them, so a team's committed
//! `secrets.yml.enc` works unchanged: comment lines starting with `#`, then the base64 IV,
//! the base64 GCM auth tag and the base64 ciphertext, each on its own line (a ciphertext
//! wrapped over several lines is joined). AES-256-GCM, 12-byte IV, no associated data;
//! the key is PBKDF2-HMAC-SHA256 over the master key's bytes, salted with the raw IV,
//! 10 000 iterations. The plaintext is YAML. All of it from RustCrypto (`aes-gcm`,
//! `pbkdf2`): nothing here is hand-written crypto. Checked against files written by
//! Python's `cryptography` (tests/vectors/make_secrets_enc.py).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;

pub const ITERATIONS: u32 = 10_000;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The environment variable that holds the master key.
pub const MASTER_KEY_VAR: &str = "ODYSSEUS_MASTER_KEY";

#[derive(Debug, PartialEq, Eq)]
pub enum Undecryptable {
    /// Line `n` (1-based) is not what the format has there.
    Format { line: usize, expected: &'static str },
    /// The authentication failed: another key, or changed bytes.
    WrongKeyOrChanged,
}

impl std::fmt::Display for Undecryptable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Undecryptable::Format { line, expected } => {
                write!(f, "line {line}: expected {expected}")
            }
            Undecryptable::WrongKeyOrChanged => write!(
                f,
                "{MASTER_KEY_VAR} does not open it: either it is not this file's key, or the file \
                 was changed since it was written (AES-GCM authentication failed)"
            ),
        }
    }
}

/// The three base64 parts and the line each starts on.
struct Parts {
    iv: Vec<u8>,
    tag: Vec<u8>,
    ciphertext: Vec<u8>,
}

fn b64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()
}

fn parts(text: &str) -> Result<Parts, Undecryptable> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let mut next = |expected: &'static str, len: Option<usize>| {
        let (n, line) = lines.next().ok_or(Undecryptable::Format {
            line: text.lines().count() + 1,
            expected,
        })?;
        match b64(line) {
            Some(bytes) if len.is_none_or(|l| bytes.len() == l) => Ok(bytes),
            _ => Err(Undecryptable::Format { line: n, expected }),
        }
    };
    let iv = next("the base64 IV (12 bytes)", Some(IV_LEN))?;
    let tag = next("the base64 auth tag (16 bytes)", Some(TAG_LEN))?;
    let mut ciphertext = next("the base64 ciphertext", None)?;
    for (n, line) in lines {
        ciphertext.extend(b64(line).ok_or(Undecryptable::Format {
            line: n,
            expected: "more base64 ciphertext",
        })?);
    }
    Ok(Parts {
        iv,
        tag,
        ciphertext,
    })
}

/// Whether `text` is in the encrypted format (an IV and a tag of the right sizes after
/// the comment lines), whatever its name: a plain file is never mistaken for one.
pub fn looks_encrypted(text: &str) -> bool {
    parts(text).is_ok()
}

fn cipher(master_key: &str, iv: &[u8]) -> Aes256Gcm {
    let key: [u8; 32] =
        pbkdf2::pbkdf2_hmac_array::<sha2::Sha256, 32>(master_key.as_bytes(), iv, ITERATIONS);
    Aes256Gcm::new(&key.into())
}

pub fn decrypt(text: &str, master_key: &str) -> Result<Vec<u8>, Undecryptable> {
    let Parts {
        iv,
        tag,
        mut ciphertext,
    } = parts(text)?;
    let nonce = Nonce::try_from(iv.as_slice()).map_err(|_| Undecryptable::WrongKeyOrChanged)?;
    let tag =
        aes_gcm::Tag::try_from(tag.as_slice()).map_err(|_| Undecryptable::WrongKeyOrChanged)?;
    cipher(master_key, &iv)
        .decrypt_inout_detached(&nonce, b"", ciphertext.as_mut_slice().into(), &tag)
        .map_err(|_| Undecryptable::WrongKeyOrChanged)?;
    Ok(ciphertext)
}

/// `plaintext` encrypted under a fresh random IV, in the file format.
pub fn encrypt(plaintext: &[u8], master_key: &str) -> std::io::Result<String> {
    let iv = crate::files::random_bytes::<IV_LEN>()?;
    let mut buffer = plaintext.to_vec();
    let nonce = Nonce::from(iv);
    let tag = cipher(master_key, &iv)
        .encrypt_inout_detached(&nonce, b"", buffer.as_mut_slice().into())
        .map_err(|_| std::io::Error::other("AES-GCM refused the message"))?;
    let engine = base64::engine::general_purpose::STANDARD;
    Ok(format!(
        "# odysseus encrypted secrets (AES-256-GCM); the key is in {MASTER_KEY_VAR}\n\
         # change with: odysseus secrets edit\n{}\n{}\n{}\n",
        engine.encode(iv),
        engine.encode(tag),
        engine.encode(&buffer)
    ))
}

/// A new master key: 32 random bytes as 64 hex digits.
pub fn generate_key() -> std::io::Result<String> {
    Ok(crate::files::hex(&crate::files::random_bytes::<32>()?))
}

/// The master key from the environment, without the newline a `$(cat key)` may leave.
pub fn master_key(environment: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    environment(MASTER_KEY_VAR)
        .map(|k| k.trim_end_matches(['\n', '\r']).to_string())
        .filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_we_encrypt_we_decrypt_and_a_changed_byte_or_key_is_refused() {
        let text = encrypt(b"A: 1\n", "k1").unwrap();
        assert!(looks_encrypted(&text));
        assert_eq!(decrypt(&text, "k1").unwrap(), b"A: 1\n");
        assert_eq!(decrypt(&text, "k2"), Err(Undecryptable::WrongKeyOrChanged));
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let engine = base64::engine::general_purpose::STANDARD;
        let mut ct = engine.decode(&lines[4]).unwrap();
        ct[0] ^= 1;
        lines[4] = engine.encode(&ct);
        assert_eq!(
            decrypt(&lines.join("\n"), "k1"),
            Err(Undecryptable::WrongKeyOrChanged)
        );
        assert!(!looks_encrypted("A: 1\nB: 2\nC: 3\n"));
        assert!(!looks_encrypted("A=AAECAwQFBgcICQoL\n"));
        assert_eq!(generate_key().unwrap().len(), 64);
    }
}
