//! What known_hosts says about a server's key: known, unknown, changed, revoked, or
//! vouched for by a certificate authority (which odysseus does not check, so it refuses).
//!
//! The file is parsed by `ssh-key` (RustCrypto); host patterns are matched here as OpenSSH
//! does: comma-separated globs (`*`, `?`), negations (`!`), `[host]:port` for other ports,
//! and hashed names (`|1|salt|HMAC-SHA1(salt, name)`). A server whose key matches none of
//! the keys recorded for it is "changed" whatever their algorithms: a man in the middle
//! offering an ECDSA key where an ED25519 key is recorded must not look like a new server.

use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_key::known_hosts::{Entry, HostPatterns, Marker};
use russh::keys::ssh_key::PublicKey;
use sha1::Sha1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A plain line for this host records this key.
    Known,
    /// No line is about this host.
    Unknown,
    /// Lines record other keys for this host (their line numbers).
    Changed(Vec<usize>),
    /// A `@revoked` line names this key (its line number).
    Revoked(usize),
    /// A `@cert-authority` line is about this host (its line number): the host is meant to
    /// present a certificate, which odysseus does not check.
    CertAuthority(usize),
    /// A line odysseus cannot read starts with `@revoked` (its line number): it may revoke
    /// this key, so nothing is trusted.
    UnreadableRevocation(usize),
}

/// The name a host has in known_hosts: `host`, or `[host]:port` for another port than 22.
pub fn entry_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Judges `key` offered by `host:port` against the text of a known_hosts file.
pub fn judge(text: &str, host: &str, port: u16, key: &PublicKey) -> Verdict {
    let name = entry_name(host, port);
    let mut others = Vec::new();
    let mut known = false;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let Ok(entry) = content.parse::<Entry>() else {
            if content.starts_with("@revoked") {
                return Verdict::UnreadableRevocation(number);
            }
            // A line of a kind odysseus cannot read (another key type, say) is not about
            // trusting this key.
            continue;
        };
        let same_key = entry.public_key().key_data() == key.key_data();
        match entry.marker() {
            Some(Marker::Revoked) if same_key => return Verdict::Revoked(number),
            Some(Marker::Revoked) => {}
            Some(Marker::CertAuthority) => {
                if matches(entry.host_patterns(), &name) {
                    return Verdict::CertAuthority(number);
                }
            }
            None => {
                if matches(entry.host_patterns(), &name) {
                    if same_key {
                        known = true;
                    } else {
                        others.push(number);
                    }
                }
            }
        }
    }
    if known {
        Verdict::Known
    } else if !others.is_empty() {
        Verdict::Changed(others)
    } else {
        Verdict::Unknown
    }
}

/// Whether `name` (`host` or `[host]:port`) matches a line's host patterns.
fn matches(patterns: &HostPatterns, name: &str) -> bool {
    match patterns {
        HostPatterns::HashedName { salt, hash } => {
            let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(salt) else {
                return false;
            };
            mac.update(name.as_bytes());
            mac.verify_slice(hash).is_ok()
        }
        HostPatterns::Patterns(list) => {
            let mut matched = false;
            for pattern in list {
                if let Some(negated) = pattern.strip_prefix('!') {
                    if glob(negated, name) {
                        return false;
                    }
                } else if glob(pattern, name) {
                    matched = true;
                }
            }
            matched
        }
    }
}

/// OpenSSH's host pattern glob: `*` any run of characters, `?` one; case-insensitive.
fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let n: Vec<char> = name.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut resume) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            resume = ni;
        } else if let Some(s) = star {
            pi = s + 1;
            resume += 1;
            ni = resume;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Reads a known_hosts file for `judge`; a missing file is an empty one.
pub fn read(path: &std::path::Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Throwaway public keys of two algorithms (ssh-keygen; their private halves are gone).
    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIUBCu26agy6pYIDFvwkZFEISkWB1alTaQ1H4dlnPrPr";
    const ED25519_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIhm1N/cigmP2pzOrq2HX7cZi3TXGPJbV8LDDncdkmzP";
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBC3pHHRQ7+b+v88CmDYJ9bMRWddzvUi5qNDGJM98Iw+YiwFhTZH5JgLnVWhaHONE/ULGnNPDLtbdadeOjWDqYnI=";
    /// `ssh-keygen -H` of the line `198.51.100.11 {ED25519}`.
    const HASHED: &str = "|1|PCBEwGPZXVvStAbQAc/+f9bIKsk=|/+9KTpTEdPoCGBEu+DwhW9BQm04=";

    fn key(text: &str) -> PublicKey {
        PublicKey::from_openssh(text).unwrap()
    }

    #[test]
    fn a_key_of_another_type_than_the_recorded_one_is_changed_not_unknown() {
        let file = format!("198.51.100.11 {ED25519}\n");
        assert_eq!(
            judge(&file, "198.51.100.11", 22, &key(ECDSA)),
            Verdict::Changed(vec![1])
        );
        assert_eq!(
            judge(&file, "198.51.100.11", 22, &key(ED25519)),
            Verdict::Known
        );
        assert_eq!(
            judge(&file, "198.51.100.11", 22, &key(ED25519_B)),
            Verdict::Changed(vec![1])
        );
        assert_eq!(
            judge(&file, "198.51.100.12", 22, &key(ED25519)),
            Verdict::Unknown
        );
        // One of several recorded keys is enough.
        let both = format!("198.51.100.11 {ECDSA}\n198.51.100.11 {ED25519}\n");
        assert_eq!(
            judge(&both, "198.51.100.11", 22, &key(ED25519)),
            Verdict::Known
        );
    }

    #[test]
    fn revoked_keys_and_certificate_authorities_are_never_trusted() {
        let file = format!("# comment\n\n198.51.100.11 {ED25519}\n@revoked * {ED25519}\n");
        assert_eq!(
            judge(&file, "198.51.100.11", 22, &key(ED25519)),
            Verdict::Revoked(4)
        );
        let ca = format!("@cert-authority *.example.com {ED25519_B}\n");
        assert_eq!(
            judge(&ca, "app.example.com", 22, &key(ED25519)),
            Verdict::CertAuthority(1)
        );
        assert_eq!(
            judge(&ca, "example.org", 22, &key(ED25519)),
            Verdict::Unknown
        );
        assert_eq!(
            judge("@revoked * sk-unknown-key AAAA\n", "h", 22, &key(ED25519)),
            Verdict::UnreadableRevocation(1)
        );
    }

    #[test]
    fn patterns_ports_negations_and_hashed_names_match_as_openssh_does() {
        let file = format!("[198.51.100.11]:2222,*.example.com,!bad.example.com {ED25519}\n");
        assert_eq!(
            judge(&file, "198.51.100.11", 2222, &key(ED25519)),
            Verdict::Known
        );
        assert_eq!(
            judge(&file, "198.51.100.11", 22, &key(ED25519)),
            Verdict::Unknown
        );
        assert_eq!(
            judge(&file, "App.Example.com", 22, &key(ED25519)),
            Verdict::Known
        );
        assert_eq!(
            judge(&file, "bad.example.com", 22, &key(ED25519)),
            Verdict::Unknown
        );
        assert!(glob("s?.example.*", "s1.example.net"));
        assert!(!glob("s?.example.*", "s10.example.net"));
        let hashed = format!("{HASHED} {ED25519}\n");
        assert_eq!(
            judge(&hashed, "198.51.100.11", 22, &key(ED25519)),
            Verdict::Known
        );
        assert_eq!(
            judge(&hashed, "198.51.100.12", 22, &key(ED25519)),
            Verdict::Unknown
        );
    }
}
