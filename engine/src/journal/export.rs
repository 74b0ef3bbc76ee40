//! A portable log file: the records of one deployment, each prefixed by its length
//! (u32 little-endian). Golden logs are stored this way, and so are exports.

use super::record::{decode, RecordError};
use crate::machine::Event;

pub fn write_log<'a>(records: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for record in records {
        out.extend_from_slice(&(record.len() as u32).to_le_bytes());
        out.extend_from_slice(record);
    }
    out
}

/// Decodes every record; the error names the index of the first bad one.
pub fn read_log(mut bytes: &[u8]) -> Result<Vec<Event>, (usize, RecordError)> {
    let mut events = Vec::new();
    while !bytes.is_empty() {
        let index = events.len();
        let Some(len) = bytes.get(..4) else {
            return Err((index, RecordError::TooShort { len: bytes.len() }));
        };
        let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
        let Some(record) = bytes.get(4..4 + len) else {
            return Err((
                index,
                RecordError::LengthMismatch {
                    declared: len,
                    actual: bytes.len() - 4,
                },
            ));
        };
        events.push(decode(record).map_err(|e| (index, e))?);
        bytes = &bytes[4 + len..];
    }
    Ok(events)
}
