//! Small value types shared by the machine, the journal and the runtime.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Identifies one deployment. Sorts by creation time, so the newest deployment of a
/// service is the greatest id; the nonce separates two deployments started in the same
/// millisecond.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct DeploymentId {
    pub millis: u64,
    pub nonce: u32,
}

impl DeploymentId {
    /// The 12-byte big-endian form used in journal keys, so keys sort like ids.
    pub fn to_key(self) -> [u8; 12] {
        let mut key = [0u8; 12];
        key[..8].copy_from_slice(&self.millis.to_be_bytes());
        key[8..].copy_from_slice(&self.nonce.to_be_bytes());
        key
    }

    pub fn from_key(bytes: &[u8]) -> Option<Self> {
        let millis = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let nonce = u32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?);
        Some(DeploymentId { millis, nonce })
    }

    /// A short form for container names: the last 10 hex digits are unique enough
    /// within one service on one host and keep Docker names readable.
    pub fn short(self) -> String {
        let full = self.to_string();
        full[full.len() - 10..].to_string()
    }
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:012x}{:08x}", self.millis, self.nonce)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a deployment id (expected 20 hexadecimal digits)")]
pub struct BadDeploymentId(String);

impl FromStr for DeploymentId {
    type Err = BadDeploymentId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadDeploymentId(s.to_string());
        if s.len() != 20 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let millis = u64::from_str_radix(&s[..12], 16).map_err(|_| bad())?;
        let nonce = u32::from_str_radix(&s[12..], 16).map_err(|_| bad())?;
        Ok(DeploymentId { millis, nonce })
    }
}

/// Wall-clock time in milliseconds since the Unix epoch. The machine never reads a
/// clock: every event carries the time the runtime stamped on it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default, Serialize, Deserialize)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-26T12:20:14.123Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1000;
        let millis = self.0 % 1000;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            rem / 3600,
            (rem / 60) % 60,
            rem % 60
        )
    }
}

/// Howard Hinnant's days-to-civil algorithm: proleptic Gregorian date of a day count.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Who drives a deployment: recorded when it starts, resumes or takes a lock over.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Operator {
    pub user: String,
    pub hostname: String,
    pub pid: u32,
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{} (pid {})", self.user, self.hostname, self.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_id_round_trips_through_text_and_key() {
        let id = DeploymentId {
            millis: 0x0193_5f2a_1b3c,
            nonce: 0xdead_beef,
        };
        let text = id.to_string();
        assert_eq!(text, "01935f2a1b3cdeadbeef");
        assert_eq!(text.parse::<DeploymentId>().unwrap(), id);
        assert_eq!(DeploymentId::from_key(&id.to_key()), Some(id));
        assert!("xyz".parse::<DeploymentId>().is_err());
    }

    #[test]
    fn timestamps_render_as_rfc3339() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_795_695_614_123).to_string(),
            "2026-11-26T12:20:14.123Z"
        );
        assert_eq!(
            Timestamp(951_782_400_000).to_string(),
            "2000-02-29T00:00:00.000Z"
        );
    }
}
