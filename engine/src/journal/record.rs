//! The record envelope: how one event is laid out in the journal.
//!
//! ```text
//! byte 0      format version (1)
//! byte 1      kind code (see wire_v1::kind_code), so tools can name a record's kind
//!             and check it against its payload
//! bytes 2..6  payload length, u32 little-endian
//! bytes 6..   payload: the event in the wire types of that format version, bincode 2
//!             with its standard configuration (varint integers, little-endian)
//! last 4      CRC-32 (IEEE) of everything before it, little-endian
//! ```

use super::wire_v1::{kind_code, EventV1};
use crate::machine::Event;

pub const FORMAT_V1: u8 = 1;
const HEADER: usize = 6;
const TRAILER: usize = 4;

/// Why a record could not be decoded. The journal adds the deployment and sequence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record is {len} bytes, shorter than the smallest possible record")]
    TooShort { len: usize },
    #[error("record length field says {declared} payload bytes but {actual} are present (torn or truncated write)")]
    LengthMismatch { declared: usize, actual: usize },
    #[error("checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("unknown format version {0} (this odysseus reads version 1)")]
    UnknownFormat(u8),
    #[error("payload does not decode: {0}")]
    Payload(String),
    #[error("kind byte {stored} does not match the decoded payload (kind {decoded})")]
    KindMismatch { stored: u8, decoded: u8 },
}

pub fn encode(event: &Event) -> Vec<u8> {
    let wire = EventV1::from(event);
    let payload = bincode::serde::encode_to_vec(&wire, bincode::config::standard())
        .expect("encoding owned wire types into a Vec cannot fail");
    let mut out = Vec::with_capacity(HEADER + payload.len() + TRAILER);
    out.push(FORMAT_V1);
    out.push(kind_code(&event.fact));
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks length and checksum only: what `replay --verify` needs even for records
/// whose payload this build cannot read.
pub fn verify(bytes: &[u8]) -> Result<(), RecordError> {
    if bytes.len() < HEADER + TRAILER {
        return Err(RecordError::TooShort { len: bytes.len() });
    }
    let declared = u32::from_le_bytes(bytes[2..6].try_into().unwrap()) as usize;
    let actual = bytes.len() - HEADER - TRAILER;
    if declared != actual {
        return Err(RecordError::LengthMismatch { declared, actual });
    }
    let (body, trailer) = bytes.split_at(bytes.len() - TRAILER);
    let stored = u32::from_le_bytes(trailer.try_into().unwrap());
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(RecordError::Checksum { stored, computed });
    }
    Ok(())
}

pub fn decode(bytes: &[u8]) -> Result<Event, RecordError> {
    verify(bytes)?;
    let version = bytes[0];
    if version != FORMAT_V1 {
        return Err(RecordError::UnknownFormat(version));
    }
    let payload = &bytes[HEADER..bytes.len() - TRAILER];
    let (wire, used): (EventV1, usize) = bincode::serde::decode_from_slice(
        payload,
        bincode::config::standard().with_limit::<{ 16 * 1024 * 1024 }>(),
    )
    .map_err(|e| RecordError::Payload(e.to_string()))?;
    if used != payload.len() {
        return Err(RecordError::Payload(format!(
            "{} trailing bytes after the event",
            payload.len() - used
        )));
    }
    let event = Event::from(wire);
    let decoded = kind_code(&event.fact);
    if decoded != bytes[1] {
        return Err(RecordError::KindMismatch {
            stored: bytes[1],
            decoded,
        });
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Timestamp;
    use crate::machine::Fact;

    #[test]
    fn round_trips_and_detects_every_single_bit_flip() {
        let event = Event {
            at: Timestamp(42),
            fact: Fact::TargetCompleted { target: 3 },
        };
        let bytes = encode(&event);
        assert_eq!(decode(&bytes), Ok(event));
        for i in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(decode(&bad).is_err(), "flip of bit {i} went unnoticed");
        }
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(RecordError::LengthMismatch { .. })
        ));
        assert!(matches!(
            decode(&bytes[..3]),
            Err(RecordError::TooShort { .. })
        ));
    }
}
