//! The event journal: every deployment's events, in order, in an embedded sled database.
//!
//! A record is appended and flushed to disk before the side effect it announces runs
//! (write-ahead intent). Records are versioned envelopes with a checksum (`record`);
//! their payload uses the frozen wire types of `wire_v1`, kept apart from the domain
//! types so that changing the code can never silently rewrite history.

pub mod copy;
mod export;
mod lock;
mod reconcile;
mod record;
mod store;
pub mod wire_v1;

pub use export::{read_log, write_log};
pub use lock::{local_hostname, process_alive, process_start_ticks, Acquired, LockRecord};
pub use reconcile::{reconcile, Disagreement, Source};
pub use record::{decode, encode, verify, RecordError, FORMAT_V1};
pub use store::{Journal, RawRecord};

use crate::ids::DeploymentId;

/// Who must react: `Storage` and `Corrupt` the operator (the disk or a bug: never the
/// user's input); `Conflict` and `LockLost` mean this process must stop driving;
/// `Locked` and `Unfinished` tell the user what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the journal in {} is in use by another odysseus process", dir.display())]
    Busy { dir: std::path::PathBuf },
    /// Not a `source`: sled's text is in the message already, and a chain printed with
    /// its sources would say it twice.
    #[error("journal storage error: {}", storage_text(.0))]
    Storage(sled::Error),
    #[error("journal record {deployment}#{seq} is corrupt: {detail}")]
    Corrupt {
        deployment: DeploymentId,
        seq: u64,
        detail: RecordError,
    },
    #[error("journal of deployment {deployment} is missing record #{expected} (next record found is #{found})")]
    Gap {
        deployment: DeploymentId,
        expected: u64,
        found: u64,
    },
    #[error(
        "journal of deployment {deployment} says it holds {head} records but {found} are present"
    )]
    HeadMismatch {
        deployment: DeploymentId,
        head: u64,
        found: u64,
    },
    #[error("append conflict: expected sequence {expected}, the journal is at {actual}")]
    Conflict { expected: u64, actual: u64 },
    #[error("no deployment {0} in this journal")]
    UnknownDeployment(DeploymentId),
    #[error("service {service} has an unfinished deployment {deployment}")]
    Unfinished {
        service: String,
        deployment: DeploymentId,
    },
    #[error("the first event of a deployment must be deployment-started")]
    NotAStart,
    #[error("service {service} is being deployed by {}", holder.owner)]
    Locked {
        service: String,
        holder: Box<LockRecord>,
    },
    #[error("this process no longer holds the deploy lock of {service} (fencing token {token}); {}", match holder { Some(h) => format!("it is held by {} with token {}", h.owner, h.token), None => "nobody holds it".to_string() })]
    LockLost {
        service: String,
        token: u64,
        holder: Option<Box<LockRecord>>,
    },
    #[error("lock record of {service} is unreadable: {detail}")]
    BadLockRecord { service: String, detail: String },
}

/// sled's words, without its debug dump of where in its code it noticed.
fn storage_text(e: &sled::Error) -> String {
    match e {
        sled::Error::Corruption { at, .. } => match at {
            Some(at) => format!("damaged data at {at:?}"),
            None => "damaged data".to_string(),
        },
        other => other.to_string(),
    }
}

impl Error {
    /// The journal's own bytes are wrong (the disk, or a hand edit): the operator must
    /// look, and nothing in it can be trusted to drive a deployment.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            Error::Storage(sled::Error::Corruption { .. })
                // A checksummed record this odysseus cannot read (an unknown format
                // version, an event kind it does not know) is a newer odysseus's, not damage.
                | Error::Corrupt {
                    detail: RecordError::TooShort { .. }
                        | RecordError::LengthMismatch { .. }
                        | RecordError::Checksum { .. }
                        | RecordError::KindMismatch { .. },
                    ..
                }
                | Error::Gap { .. }
                | Error::HeadMismatch { .. }
                | Error::BadLockRecord { .. }
        )
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Error {
        Error::Storage(e)
    }
}
