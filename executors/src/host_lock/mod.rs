//! The deploy lock held on the target hosts themselves, so two operators — from two
//! machines or two state dirs — cannot deploy one service at once, and a lock can never
//! go stale: `flock` held by a small shell loop that this process feeds, a child process
//! on `local` and an SSH exec channel on a server. When this process or its connection
//! dies, the loop's input closes and the lock goes with it. Who may touch the lock files
//! at all: `script`.

mod held;
pub(crate) mod script;

pub use held::{take_local, take_over_ssh, AppendError, HeldLock};
pub use script::{
    break_command, probe_command, prune_journal_command, read_journal_command, shell_quote,
    JOURNAL_ROOT, LOCK_DIR,
};

use odysseus_engine::runtime::ExecError;

/// What we lock, and the line that names us in the holder file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub service: String,
    /// One line; newlines are replaced, so the holder file holds exactly this line.
    pub holder: String,
}

impl Claim {
    pub fn new(service: &str, holder: &str) -> Claim {
        Claim {
            service: service.to_string(),
            holder: holder.replace(['\n', '\r'], " ").trim().to_string(),
        }
    }
}

/// A service's lock files on a host: the flocked file, the holder line (who, read by the
/// fence and by `lock status`), the loop's pid (for a renewal to stop our own stale loop);
/// and the directory of the host's copy of the service's journal, which only the loop
/// writes.
pub struct LockFiles {
    pub lock: String,
    pub holder: String,
    pub pid: String,
    pub journal: String,
}

impl LockFiles {
    pub fn of(service: &str) -> LockFiles {
        LockFiles {
            lock: format!("{LOCK_DIR}/{service}.lock"),
            holder: format!("{LOCK_DIR}/{service}.holder"),
            pid: format!("{LOCK_DIR}/{service}.pid"),
            journal: format!("{JOURNAL_ROOT}/journal/{service}"),
        }
    }
}

/// Taking the lock for the first time, or taking it again after a lost connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// Anyone's lock, as long as it is free.
    Fresh,
    /// Only if the holder file still names us: if someone else locked in between, the
    /// host may have changed under us and acting on would be acting blind.
    Renew,
}

#[derive(Debug)]
pub enum LockError {
    /// Someone holds the lock now.
    Held(String),
    /// Free, but not ours any more: the holder file names someone else, or nobody.
    Lost(String),
    Failed(ExecError),
}

impl LockError {
    /// The error a step gets when the lock on `host` is not ours any more.
    pub fn into_exec(self, host: &str, service: &str) -> ExecError {
        match self {
            LockError::Held(holder) => ExecError::Permanent(format!(
                "lost the deploy lock of {service} on {host}: it is held by {holder}; \
                 nothing more is done on that host"
            )),
            LockError::Lost(holder) if holder.is_empty() => ExecError::Permanent(format!(
                "lost the deploy lock of {service} on {host}: it was released \
                 (`odysseus lock release`) while this deploy held it; nothing more is done on that host"
            )),
            LockError::Lost(holder) => ExecError::Permanent(format!(
                "lost the deploy lock of {service} on {host}: {holder} took it while this deploy's \
                 connection was down, so the host may have changed; nothing more is done on that host"
            )),
            LockError::Failed(e) => e,
        }
    }
}

/// What a probe or break script said, as an error when the directory is not safe.
/// (The caller's messages name the host.)
pub fn unsafe_dir(out: &str) -> Option<ExecError> {
    out.lines()
        .find_map(|l| l.strip_prefix("unsafe "))
        .map(|why| ExecError::Permanent(format!("odysseus will not use its lock directory: {why}")))
}
