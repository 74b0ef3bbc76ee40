//! Small parsers for deploy.yml's values: names, sizes, statuses, ports, volumes.

use odysseus_executors::docker::spec::ExpectStatus;

pub(super) fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

pub(super) fn valid_name(s: &str) -> bool {
    if s.len() > 63 {
        return false;
    }
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `4g`, `512m`, `1024k`, `1073741824` → bytes.
pub(super) fn parse_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (digits, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let value: f64 = digits.trim().parse().ok()?;
    let factor = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = value * factor;
    (bytes >= 1.0 && bytes < i64::MAX as f64).then_some(bytes as i64)
}

pub(super) fn parse_expect(s: &str) -> Option<ExpectStatus> {
    let s = s.trim();
    if let Some(class) = s
        .strip_suffix("xx")
        .and_then(|d| d.parse::<u8>().ok())
        .filter(|d| (1..=5).contains(d))
    {
        return Some(ExpectStatus::Class(class));
    }
    s.parse::<u16>()
        .ok()
        .filter(|c| (100..600).contains(c))
        .map(ExpectStatus::Exact)
}

/// `5432`, `5433:5432`, `127.0.0.1:5433:5432` → (container port, host address, host port).
pub(super) fn parse_port(s: &str) -> Option<(u16, String, u16)> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
    match parts.as_slice() {
        [c] => Some((port(c)?, "0.0.0.0".into(), port(c)?)),
        [h, c] => Some((port(c)?, "0.0.0.0".into(), port(h)?)),
        [a, h, c] if a.parse::<std::net::IpAddr>().is_ok() => {
            Some((port(c)?, a.to_string(), port(h)?))
        }
        _ => None,
    }
}

/// A named volume (no path) is namespaced by the service; paths are binds as written.
pub(super) fn namespace_volumes(service: &str, volumes: Vec<String>) -> Vec<String> {
    volumes
        .into_iter()
        .map(|v| match v.split_once(':') {
            Some((source, rest))
                if !source.starts_with('/')
                    && !source.starts_with('.')
                    && !source.starts_with('~') =>
            {
                format!("{service}-{source}:{rest}")
            }
            _ => v,
        })
        .collect()
}

/// A host as deploy.yml names it: `local`, or a DNS name / IPv4 address / `[IPv6]`, with
/// an optional `:port`. It becomes an SSH target and a known_hosts name, and appears in
/// commands: nothing else is accepted (no spaces, `;`, `$`, a leading `-`).
pub(super) fn check_host(host: &str) -> Result<(), String> {
    if host == "local" {
        return Ok(());
    }
    let bad_port = |p: &str| !p.parse::<u16>().is_ok_and(|n| n > 0);
    let name = if let Some(rest) = host.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return Err(format!(
                "`{host}`: an IPv6 address is written [addr] or [addr]:port"
            ));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{addr}` is not an IPv6 address"));
        }
        match after.strip_prefix(':') {
            Some(p) if bad_port(p) => return Err(format!("`{host}`: the port must be 1 to 65535")),
            None if !after.is_empty() => return Err(format!("`{host}`: expected [addr]:port")),
            _ => return Ok(()),
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, p)) => {
                if bad_port(p) {
                    return Err(format!("`{host}`: the port must be 1 to 65535"));
                }
                name
            }
            None => host,
        }
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!(
            "`{}` is not a host name or address (letters, digits, - and . only, optionally :port)",
            host.escape_debug()
        ));
    }
    Ok(())
}

/// An environment variable name as the container will see it.
pub(super) fn check_env_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 256;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not an environment variable name (letters, digits and _, not starting with a digit)",
            name.escape_debug()
        ))
    }
}

/// An HTTP path that becomes a request line: `/` first, no spaces or control characters.
pub(super) fn check_http_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("`{}` must start with /", path.escape_debug()));
    }
    if path.len() > 2048 || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{}` must be a URL path without spaces or control characters (at most 2048 bytes)",
            path.escape_debug()
        ));
    }
    Ok(())
}

/// An image reference as Docker takes it (`repo/name`, `host:5000/name`, `name:tag`,
/// `name@sha256:…`).
pub(super) fn check_image(image: &str) -> Result<(), String> {
    let ok = !image.is_empty()
        && image.len() <= 512
        && !image.starts_with(['-', '.', ':', '/', '@'])
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c));
    if !ok {
        return Err(format!(
            "`{}` is not an image reference (letters, digits and . _ - / : @)",
            image.escape_debug()
        ));
    }
    // `registry:port/path/name:tag@digest`: one tag at most, after the last `/`.
    let last = image.rsplit('/').next().unwrap_or_default();
    let name_and_tag = last.split('@').next().unwrap_or_default();
    if name_and_tag.matches(':').count() > 1 || image.contains("//") || image.ends_with(['/', ':'])
    {
        return Err(format!(
            "`{image}` is not an image reference: REPOSITORY[:TAG], e.g. registry.example.com:5000/team/app:v1"
        ));
    }
    Ok(())
}

/// A `cmd:` as the container's command. A list is used as written. A string is split into
/// words as a shell would (quotes respected), so an image's ENTRYPOINT receives them as
/// its arguments — what `docker run IMAGE bundle exec puma` does for Kamal and the Ruby
/// tool — and no shell is needed in the image. A string that uses shell syntax (a pipe,
/// `&&`, `;`, a redirection, `$VAR`, a backquote) runs under `/bin/sh -c`, as written.
pub fn command(cmd: &super::raw::StringOrList) -> Result<Vec<String>, String> {
    match cmd {
        super::raw::StringOrList::Many(v) => Ok(v.clone()),
        super::raw::StringOrList::One(s) => {
            let shell_syntax = ['|', '&', ';', '<', '>', '$', '`', '(', ')']
                .iter()
                .any(|c| s.contains(*c));
            if shell_syntax {
                return Ok(vec!["/bin/sh".into(), "-c".into(), s.clone()]);
            }
            match shlex::split(s) {
                Some(words) if !words.is_empty() => Ok(words),
                Some(_) => Err("is empty".into()),
                None => Err(format!("`{s}` has an unclosed quote")),
            }
        }
    }
}

#[cfg(test)]
mod command_tests {
    use super::super::raw::StringOrList::{Many, One};
    use super::command;

    #[test]
    fn words_reach_the_entrypoint_and_shell_syntax_gets_a_shell() {
        assert_eq!(command(&One("worker".into())).unwrap(), ["worker"]);
        assert_eq!(
            command(&One("bundle exec 'good job'".into())).unwrap(),
            ["bundle", "exec", "good job"]
        );
        assert_eq!(
            command(&One("bin/setup && bin/start".into())).unwrap(),
            ["/bin/sh", "-c", "bin/setup && bin/start"]
        );
        assert_eq!(command(&Many(vec!["a b".into()])).unwrap(), ["a b"]);
        assert!(command(&One("echo 'open".into())).is_err());
        assert!(command(&One("   ".into())).is_err());
    }
}
