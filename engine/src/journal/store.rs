//! The sled-backed journal.
//!
//! Trees:
//! - `events`:     deployment id (12 bytes) + sequence (u64 big-endian) -> record
//! - `heads`:      deployment id -> next sequence (u64 big-endian) + service name
//! - `by_service`: service + 0x00 + deployment id -> (empty): the deployments of a service
//! - `unfinished`: service -> deployment id of its unfinished deployment, if any
//! - `locks`:      service -> lock record

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::lock::{decode_lock, encode_lock};
use super::record::{decode, encode, verify};
use super::{Acquired, Error, LockRecord};
use crate::ids::{DeploymentId, Operator, Timestamp};
use crate::machine::{Event, Fact};

/// The fencing counter lives in the locks tree under a key no service name can have
/// (service names never contain NUL).
const FENCE_KEY: &[u8] = b"\0fencing-counter";

pub struct Journal {
    db: sled::Db,
    events: sled::Tree,
    heads: sled::Tree,
    by_service: sled::Tree,
    unfinished: sled::Tree,
    locks: sled::Tree,
}

/// One stored record, as bytes, with its place in the log.
pub struct RawRecord {
    pub seq: u64,
    pub bytes: Vec<u8>,
}

fn event_key(id: DeploymentId, seq: u64) -> [u8; 20] {
    let mut key = [0u8; 20];
    key[..12].copy_from_slice(&id.to_key());
    key[12..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn service_key(service: &str, id: DeploymentId) -> Vec<u8> {
    let mut key = service.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&id.to_key());
    key
}

fn encode_head(next_seq: u64, service: &str) -> Vec<u8> {
    let mut v = next_seq.to_be_bytes().to_vec();
    v.extend_from_slice(service.as_bytes());
    v
}

fn decode_head(bytes: &[u8]) -> (u64, String) {
    let next = bytes
        .get(..8)
        .map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap()));
    let service = String::from_utf8_lossy(bytes.get(8..).unwrap_or_default()).into_owned();
    (next, service)
}

/// sled 0.34 releases its directory lock from a background thread after the `Db` is
/// dropped, so reopening at once can fail with `WouldBlock` for a few milliseconds
/// (spacejam/sled#1234). Retry briefly; a journal really held by another process stays
/// held far longer than this budget and is reported as `Busy`.
fn open_with_lock_retry(dir: &Path) -> Result<sled::Db, Error> {
    let mut wait = std::time::Duration::from_millis(5);
    let mut waited = std::time::Duration::ZERO;
    loop {
        // No background flusher: every append flushes itself, and a journal that is
        // dropped at any instant (a crash) must lose nothing that was acknowledged.
        match sled::Config::new().path(dir).flush_every_ms(None).open() {
            Ok(db) => return Ok(db),
            // sled reports the failed flock as an `Other` error with this text.
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.to_string().contains("could not acquire lock") =>
            {
                if waited >= std::time::Duration::from_millis(1500) {
                    return Err(Error::Busy {
                        dir: dir.to_path_buf(),
                    });
                }
                std::thread::sleep(wait);
                waited += wait;
                wait = (wait * 2).min(std::time::Duration::from_millis(100));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

impl Journal {
    /// Opens (or creates) the journal in `dir`.
    pub fn open(dir: &Path) -> Result<Journal, Error> {
        let db = open_with_lock_retry(dir)?;
        Ok(Journal {
            events: db.open_tree("events")?,
            heads: db.open_tree("heads")?,
            by_service: db.open_tree("by_service")?,
            unfinished: db.open_tree("unfinished")?,
            locks: db.open_tree("locks")?,
            db,
        })
    }

    /// Appends `event` as record number `expected_seq` of `deployment` and flushes it to
    /// disk before returning. Fails with `Conflict { expected, actual }` when the log is
    /// elsewhere, and refuses a second unfinished deployment of the same service.
    pub fn append(
        &self,
        deployment: DeploymentId,
        expected_seq: u64,
        event: &Event,
    ) -> Result<u64, Error> {
        self.append_encoded(deployment, expected_seq, event, encode(event))
    }

    /// Appends a record read from another copy of the journal (a host's), byte for byte,
    /// under the same rules as [`Journal::append`]. A record that does not decode is
    /// refused as corrupt.
    /// Not flushed: call [`Journal::flush`] after a batch (a record lost to a crash before
    /// that is read from the hosts again).
    pub fn import(
        &self,
        deployment: DeploymentId,
        expected_seq: u64,
        bytes: &[u8],
    ) -> Result<u64, Error> {
        let event = decode(bytes).map_err(|detail| Error::Corrupt {
            deployment,
            seq: expected_seq,
            detail,
        })?;
        self.insert(deployment, expected_seq, &event, bytes.to_vec())
    }

    /// The stored bytes of records `from..` of a deployment (none when it is unknown).
    pub fn raw_from(&self, deployment: DeploymentId, from: u64) -> Result<Vec<Vec<u8>>, Error> {
        let start = event_key(deployment, from);
        let end = event_key(deployment, u64::MAX);
        let mut out = Vec::new();
        for item in self.events.range(start..end) {
            let (key, value) = item?;
            let seq = key
                .get(12..20)
                .map_or(u64::MAX, |b| u64::from_be_bytes(b.try_into().unwrap()));
            let expected = from + out.len() as u64;
            if seq != expected {
                return Err(Error::Gap {
                    deployment,
                    expected,
                    found: seq,
                });
            }
            out.push(value.to_vec());
        }
        Ok(out)
    }

    fn append_encoded(
        &self,
        deployment: DeploymentId,
        expected_seq: u64,
        event: &Event,
        bytes: Vec<u8>,
    ) -> Result<u64, Error> {
        let seq = self.insert(deployment, expected_seq, event, bytes)?;
        self.db.flush()?;
        Ok(seq)
    }

    /// The append's transaction, without the flush.
    fn insert(
        &self,
        deployment: DeploymentId,
        expected_seq: u64,
        event: &Event,
        bytes: Vec<u8>,
    ) -> Result<u64, Error> {
        let id_key = deployment.to_key();
        let closes = event.fact.closes_deployment();
        let start_service = match &event.fact {
            Fact::DeploymentStarted(s) => Some(s.service.clone()),
            _ => None,
        };

        let result = (
            &self.events,
            &self.heads,
            &self.by_service,
            &self.unfinished,
        )
            .transaction(|(events, heads, by_service, unfinished)| {
                let head = heads.get(id_key)?.map(|h| decode_head(&h));
                let actual = head.as_ref().map_or(0, |(next, _)| *next);
                if actual != expected_seq {
                    return Err(ConflictableTransactionError::Abort(Error::Conflict {
                        expected: expected_seq,
                        actual,
                    }));
                }
                let service = match (&head, &start_service) {
                    (None, Some(service)) => {
                        if let Some(other) = unfinished.get(service.as_bytes())? {
                            let other = DeploymentId::from_key(&other).unwrap_or(deployment);
                            return Err(ConflictableTransactionError::Abort(Error::Unfinished {
                                service: service.clone(),
                                deployment: other,
                            }));
                        }
                        by_service.insert(service_key(service, deployment), &[][..])?;
                        unfinished.insert(service.as_bytes(), &id_key[..])?;
                        service.clone()
                    }
                    (Some((_, service)), None) => service.clone(),
                    _ => return Err(ConflictableTransactionError::Abort(Error::NotAStart)),
                };
                events.insert(&event_key(deployment, expected_seq)[..], bytes.as_slice())?;
                heads.insert(&id_key[..], encode_head(expected_seq + 1, &service))?;
                if closes && unfinished.get(service.as_bytes())?.as_deref() == Some(&id_key[..]) {
                    unfinished.remove(service.as_bytes())?;
                }
                Ok(expected_seq)
            });
        match result {
            Ok(seq) => Ok(seq),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(Error::Storage(e)),
        }
    }

    /// The stored records of a deployment, verified for order and completeness but not
    /// decoded.
    pub fn raw_records(&self, deployment: DeploymentId) -> Result<Vec<RawRecord>, Error> {
        let head = self
            .heads
            .get(deployment.to_key())?
            .ok_or(Error::UnknownDeployment(deployment))?;
        let (next_seq, _) = decode_head(&head);
        let mut records = Vec::with_capacity(next_seq as usize);
        for item in self.events.scan_prefix(deployment.to_key()) {
            let (key, value) = item?;
            let seq = key
                .get(12..20)
                .map_or(u64::MAX, |b| u64::from_be_bytes(b.try_into().unwrap()));
            let expected = records.len() as u64;
            if seq != expected {
                return Err(Error::Gap {
                    deployment,
                    expected,
                    found: seq,
                });
            }
            records.push(RawRecord {
                seq,
                bytes: value.to_vec(),
            });
        }
        if records.len() as u64 != next_seq {
            return Err(Error::HeadMismatch {
                deployment,
                head: next_seq,
                found: records.len() as u64,
            });
        }
        Ok(records)
    }

    /// Every event of a deployment, decoded; the first bad record is reported with its
    /// deployment id and sequence number.
    pub fn load(&self, deployment: DeploymentId) -> Result<Vec<Event>, Error> {
        self.raw_records(deployment)?
            .into_iter()
            .map(|r| {
                decode(&r.bytes).map_err(|detail| Error::Corrupt {
                    deployment,
                    seq: r.seq,
                    detail,
                })
            })
            .collect()
    }

    /// Checks every record's checksum and the sequence without decoding payloads.
    pub fn verify(&self, deployment: DeploymentId) -> Result<u64, Error> {
        let records = self.raw_records(deployment)?;
        for r in &records {
            verify(&r.bytes).map_err(|detail| Error::Corrupt {
                deployment,
                seq: r.seq,
                detail,
            })?;
        }
        Ok(records.len() as u64)
    }

    /// Deployments of a service, newest first.
    pub fn deployments(&self, service: &str) -> Result<Vec<DeploymentId>, Error> {
        let mut prefix = service.as_bytes().to_vec();
        prefix.push(0);
        let mut ids = Vec::new();
        for item in self.by_service.scan_prefix(&prefix).rev() {
            let (key, _) = item?;
            if let Some(id) = DeploymentId::from_key(&key[prefix.len()..]) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Every deployment in the journal, oldest first.
    pub fn all_deployments(&self) -> Result<Vec<DeploymentId>, Error> {
        let mut ids = Vec::new();
        for item in self.heads.iter() {
            let (key, _) = item?;
            if let Some(id) = DeploymentId::from_key(&key) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    pub fn unfinished(&self, service: &str) -> Result<Option<DeploymentId>, Error> {
        Ok(self
            .unfinished
            .get(service.as_bytes())?
            .and_then(|v| DeploymentId::from_key(&v)))
    }

    /// Replaces a stored record's bytes. Only for tests that prove corruption is caught.
    #[doc(hidden)]
    pub fn overwrite_raw_record(
        &self,
        deployment: DeploymentId,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(), Error> {
        self.events.insert(&event_key(deployment, seq)[..], bytes)?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes a stored record. Only for tests that prove a gap is caught.
    #[doc(hidden)]
    pub fn remove_raw_record(&self, deployment: DeploymentId, seq: u64) -> Result<(), Error> {
        self.events.remove(&event_key(deployment, seq)[..])?;
        self.db.flush()?;
        Ok(())
    }

    // ---- the deploy lock ----

    pub fn lock_holder(&self, service: &str) -> Result<Option<LockRecord>, Error> {
        match self.locks.get(service.as_bytes())? {
            None => Ok(None),
            Some(bytes) => decode_lock(&bytes)
                .map(Some)
                .map_err(|detail| Error::BadLockRecord {
                    service: service.to_string(),
                    detail,
                }),
        }
    }

    /// Takes the deploy lock of `service` for `owner`. A lock held by a live process is
    /// refused with its holder; one whose holder is gone (`alive` says so) is taken over.
    pub fn acquire_lock(
        &self,
        service: &str,
        owner: &Operator,
        process_start: u64,
        now: Timestamp,
        deployment: Option<DeploymentId>,
        alive: &dyn Fn(&LockRecord) -> bool,
    ) -> Result<Acquired, Error> {
        loop {
            let current = self.locks.get(service.as_bytes())?;
            let previous = match &current {
                None => None,
                Some(bytes) => {
                    let holder = decode_lock(bytes).map_err(|detail| Error::BadLockRecord {
                        service: service.to_string(),
                        detail,
                    })?;
                    if alive(&holder) {
                        return Err(Error::Locked {
                            service: service.to_string(),
                            holder: Box::new(holder),
                        });
                    }
                    Some(holder)
                }
            };
            let token = self.next_fencing_token()?;
            let record = LockRecord {
                owner: owner.clone(),
                process_start,
                since: now,
                token,
                deployment,
            };
            let swapped = self.locks.compare_and_swap(
                service.as_bytes(),
                current,
                Some(encode_lock(&record)),
            )?;
            if swapped.is_ok() {
                self.db.flush()?;
                return Ok(match previous {
                    None => Acquired::Fresh { token },
                    Some(previous) => Acquired::TakenOver { token, previous },
                });
            }
            // Someone changed the lock between our read and our swap: look again.
        }
    }

    /// Fencing tokens only ever grow, across services and restarts.
    fn next_fencing_token(&self) -> Result<u64, Error> {
        let bumped = self.locks.update_and_fetch(FENCE_KEY, |old| {
            let old = old
                .and_then(|b| b.try_into().ok())
                .map_or(0, u64::from_be_bytes);
            Some((old + 1).to_be_bytes().to_vec())
        })?;
        Ok(bumped
            .and_then(|b| b.as_ref().try_into().ok())
            .map_or(1, u64::from_be_bytes))
    }

    /// Records which deployment the lock now covers (known only after the lock is taken).
    pub fn set_lock_deployment(
        &self,
        service: &str,
        token: u64,
        deployment: DeploymentId,
    ) -> Result<(), Error> {
        let mut holder = self.fenced_holder(service, token)?;
        holder.deployment = Some(deployment);
        self.locks
            .insert(service.as_bytes(), encode_lock(&holder))?;
        self.db.flush()?;
        Ok(())
    }

    /// Fails unless the lock of `service` is still held with `token`.
    pub fn check_fence(&self, service: &str, token: u64) -> Result<(), Error> {
        self.fenced_holder(service, token).map(|_| ())
    }

    fn fenced_holder(&self, service: &str, token: u64) -> Result<LockRecord, Error> {
        match self.lock_holder(service)? {
            Some(holder) if holder.token == token => Ok(holder),
            other => Err(Error::LockLost {
                service: service.to_string(),
                token,
                holder: other.map(Box::new),
            }),
        }
    }

    /// Releases the lock if it is still held with `token`; a lock already taken by
    /// someone else is left alone.
    pub fn release_lock(&self, service: &str, token: u64) -> Result<(), Error> {
        if let Some(bytes) = self.locks.get(service.as_bytes())? {
            if decode_lock(&bytes).map(|h| h.token) == Ok(token) {
                let _ =
                    self.locks
                        .compare_and_swap(service.as_bytes(), Some(bytes), None::<&[u8]>)?;
                self.db.flush()?;
            }
        }
        Ok(())
    }

    /// Breaks the lock whoever holds it, returning the record that was removed. The old
    /// holder's token then fails every fence check, and any new lock gets a greater one.
    pub fn break_lock(&self, service: &str) -> Result<Option<LockRecord>, Error> {
        let holder = self.lock_holder(service)?;
        self.locks.remove(service.as_bytes())?;
        self.db.flush()?;
        Ok(holder)
    }

    /// Flushes everything to disk.
    pub fn flush(&self) -> Result<(), Error> {
        self.db.flush()?;
        Ok(())
    }
}
