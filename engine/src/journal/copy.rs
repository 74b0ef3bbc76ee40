//! A deployment's journal as a host keeps it: one text file per deployment, appended to
//! by the deploy lock's loop on that host (`executors/src/host_lock/script.rs`), read
//! back by anyone who deploys the service. Text, so `sh` can append it and a person can
//! `cat` it; every record is the local journal's record, byte for byte (its own CRC
//! inside), so a copy is checked the way the local journal is.
//!
//! ```text
//! odysseus-journal 1 <service> <deployment id>      the header: format version 1
//! 0 <record 0, standard base64>
//! 1 <record 1>
//! …
//! ```
//!
//! Frozen: a change is a new version number in the header, read beside version 1
//! (golden files in `engine/tests/golden/`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::record::{verify, RecordError};
use crate::ids::DeploymentId;

pub const MAGIC: &str = "odysseus-journal";
pub const COPY_FORMAT_V1: u32 = 1;

/// The file name of a deployment's copy in the service's directory.
pub fn file_name(deployment: DeploymentId) -> String {
    format!("{deployment}.journal")
}

/// The first line of a copy (without its newline).
pub fn header(service: &str, deployment: DeploymentId) -> String {
    format!("{MAGIC} {COPY_FORMAT_V1} {service} {deployment}")
}

/// Record `seq` as one line (without its newline).
pub fn line(seq: u64, record: &[u8]) -> String {
    format!("{seq} {}", STANDARD.encode(record))
}

/// The lines that append `records` (numbered from `from`) to a copy: the header first
/// when the copy is new.
pub fn lines(
    service: &str,
    deployment: DeploymentId,
    from: u64,
    records: &[Vec<u8>],
) -> Vec<String> {
    let mut out = Vec::with_capacity(records.len() + 1);
    if from == 0 {
        out.push(header(service, deployment));
    }
    for (i, r) in records.iter().enumerate() {
        out.push(line(from + i as u64, r));
    }
    out
}

/// A host's copy of one deployment, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub service: String,
    pub deployment: DeploymentId,
    /// The records, in order from 0, each verified (length and CRC).
    pub records: Vec<Vec<u8>>,
    /// Bytes of the file that hold the header and these records: where the next append
    /// goes.
    pub valid_bytes: u64,
    /// The file went on past the last whole record with bytes that do not make one (a
    /// write that was never acknowledged: the host lost power or the connection dropped
    /// mid-append). Ignored, and cut at the next append.
    pub torn_tail: bool,
}

/// Why a copy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    #[error("it does not start with an odysseus journal header")]
    NoHeader,
    #[error("it is written in copy format {0}; this odysseus reads format 1 (upgrade odysseus)")]
    UnknownFormat(String),
    #[error("its header names {found}, not {expected}")]
    WrongHeader { expected: String, found: String },
    #[error("record {seq} is damaged ({why}): the copy was changed after it was written")]
    Damaged { seq: u64, why: String },
    /// The file is there but could not be read (permissions, not a file).
    #[error("it {0}")]
    Unreadable(String),
}

/// Reads a copy, which must be of `service`'s `deployment`. A copy with no whole header
/// yet (a first append that never finished) is empty.
pub fn parse(service: &str, deployment: DeploymentId, text: &[u8]) -> Result<Copy, CopyError> {
    let mut copy = Copy {
        service: service.to_string(),
        deployment,
        records: Vec::new(),
        valid_bytes: 0,
        torn_tail: false,
    };
    let mut lines = whole_lines(text);
    let Some((first, end)) = lines.next() else {
        copy.torn_tail = !text.is_empty();
        return Ok(copy);
    };
    let first = String::from_utf8_lossy(first);
    let mut words = first.split(' ');
    if words.next() != Some(MAGIC) {
        return Err(CopyError::NoHeader);
    }
    match words.next() {
        Some("1") => {}
        other => return Err(CopyError::UnknownFormat(other.unwrap_or("").to_string())),
    }
    let expected = format!("{service} {deployment}");
    let found = words.collect::<Vec<_>>().join(" ");
    if found != expected {
        return Err(CopyError::WrongHeader { expected, found });
    }
    copy.valid_bytes = end as u64;
    // A bad line is a torn tail only when nothing whole follows it.
    let mut bad: Option<(u64, String)> = None;
    for (line, end) in lines {
        let seq = copy.records.len() as u64;
        if let Some((bad_seq, why)) = bad {
            return Err(CopyError::Damaged { seq: bad_seq, why });
        }
        match record_of(line, seq) {
            Ok(record) => {
                copy.records.push(record);
                copy.valid_bytes = end as u64;
            }
            Err(why) => bad = Some((seq, why)),
        }
    }
    // A whole line that is not a record was written by something else — unless it is
    // the zeroes a power cut can leave where an append was going.
    if let Some((seq, why)) = bad {
        let tail = &text[copy.valid_bytes as usize..];
        if !tail.iter().all(|b| *b == 0 || *b == b'\n') {
            return Err(CopyError::Damaged {
                seq,
                why: format!("a whole line that is not record {seq}: {why}"),
            });
        }
    }
    copy.torn_tail = (copy.valid_bytes as usize) < text.len();
    Ok(copy)
}

fn record_of(line: &[u8], seq: u64) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not text".to_string())?;
    let (n, data) = text
        .split_once(' ')
        .ok_or_else(|| "no sequence number".to_string())?;
    if n != seq.to_string() {
        return Err(format!("numbered {n:?} where record {seq} belongs"));
    }
    let bytes = STANDARD
        .decode(data)
        .map_err(|e| format!("not base64: {e}"))?;
    verify(&bytes).map_err(|e: RecordError| e.to_string())?;
    Ok(bytes)
}

/// Each line that ends with a newline (without it), and the offset just past it.
fn whole_lines(text: &[u8]) -> impl Iterator<Item = (&[u8], usize)> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let rest = text.get(start..)?;
        let nl = rest.iter().position(|b| *b == b'\n')?;
        let line = &rest[..nl];
        start += nl + 1;
        Some((line, start))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::encode;
    use crate::machine::{Event, Fact};
    use crate::Timestamp;

    fn id() -> DeploymentId {
        DeploymentId {
            millis: 0x0194_0000_0001,
            nonce: 7,
        }
    }

    fn records(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                encode(&Event {
                    at: Timestamp(1_700_000_000_000 + i as u64),
                    fact: Fact::Resumed {
                        by: crate::Operator {
                            user: "ci".into(),
                            hostname: "runner".into(),
                            pid: i as u32,
                        },
                        lock_token: 1,
                    },
                })
            })
            .collect()
    }

    fn file(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = String::new();
        for l in lines("web", id(), 0, records) {
            out.push_str(&l);
            out.push('\n');
        }
        out.into_bytes()
    }

    #[test]
    fn a_copy_reads_back_what_was_appended_in_pieces() {
        let all = records(5);
        let mut text = String::new();
        for l in
            lines("web", id(), 0, &all[..2])
                .into_iter()
                .chain(lines("web", id(), 2, &all[2..]))
        {
            text.push_str(&l);
            text.push('\n');
        }
        let copy = parse("web", id(), text.as_bytes()).unwrap();
        assert_eq!(copy.records, all);
        assert_eq!(copy.valid_bytes as usize, text.len());
        assert!(!copy.torn_tail);
    }

    #[test]
    fn a_torn_last_record_is_left_out_and_its_bytes_are_not_counted() {
        let all = records(3);
        let whole = file(&all);
        for cut in [whole.len() - 1, whole.len() - 10] {
            let copy = parse("web", id(), &whole[..cut]).unwrap();
            assert_eq!(copy.records, all[..2].to_vec());
            assert!(copy.torn_tail);
        }
        // Zeroes after a power cut, with a newline in them.
        let mut zeroed = whole.clone();
        zeroed.extend_from_slice(b"\0\0\0\n");
        let copy = parse("web", id(), &zeroed).unwrap();
        assert_eq!(copy.records, all);
        assert_eq!(copy.valid_bytes as usize, whole.len());
        assert!(copy.torn_tail);
        assert_eq!(
            parse("web", id(), b"odysseus-jour").unwrap().records.len(),
            0
        );
    }

    #[test]
    fn a_changed_record_with_records_after_it_is_damage_not_a_tear() {
        let all = records(3);
        let text = String::from_utf8(file(&all)).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        // Flip one base64 character of record 1.
        let l = &mut lines[2];
        let last = l.pop().unwrap();
        l.push(if last == 'A' { 'B' } else { 'A' });
        let changed = lines.join("\n") + "\n";
        match parse("web", id(), changed.as_bytes()) {
            Err(CopyError::Damaged { seq: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_whole_line_appended_by_something_else_is_damage() {
        let all = records(2);
        let mut text = file(&all);
        text.extend_from_slice(b"garbage here\n");
        assert!(matches!(
            parse("web", id(), &text),
            Err(CopyError::Damaged { seq: 2, .. })
        ));
        // A valid record under the wrong number.
        let mut text = file(&all);
        text.extend_from_slice(line(99, &all[0]).as_bytes());
        text.push(b'\n');
        assert!(matches!(
            parse("web", id(), &text),
            Err(CopyError::Damaged { seq: 2, .. })
        ));
    }

    #[test]
    fn a_copy_of_another_deployment_or_format_is_refused() {
        let text = file(&records(1));
        let other = DeploymentId {
            millis: 1,
            nonce: 1,
        };
        assert!(matches!(
            parse("web", other, &text),
            Err(CopyError::WrongHeader { .. })
        ));
        assert!(matches!(
            parse("api", id(), &text),
            Err(CopyError::WrongHeader { .. })
        ));
        let v2 = String::from_utf8(text).unwrap().replacen(" 1 ", " 2 ", 1);
        assert!(
            matches!(parse("web", id(), v2.as_bytes()), Err(CopyError::UnknownFormat(v)) if v == "2")
        );
        assert_eq!(parse("web", id(), b"hello\n"), Err(CopyError::NoHeader));
    }
}
