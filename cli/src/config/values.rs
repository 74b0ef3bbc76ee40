//! Small parsers for deploy.yml's values: names, sizes, statuses, ports, volumes.

use odysseus_executors::docker::spec::ExpectStatus;

pub(super) fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

pub(super) fn valid_name(s: &str) -> bool {
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
        [a, h, c] if !a.is_empty() => Some((port(c)?, a.to_string(), port(h)?)),
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
