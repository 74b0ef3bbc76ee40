//! The deploy lock on a server, held by one SSH exec channel of this process.
//!
//! `flock` holds the lock file while a small shell loop runs on the channel; the loop ends,
//! and the lock with it, when this process or its connection dies — so the lock cannot go
//! stale. The same loop is the host-level fence: each side effect first sends a line and
//! the loop answers `ok` only while the holder file still names this holder. A lock broken
//! by `odysseus lock release`, or taken by someone else while our connection was down, is
//! seen before the next side effect instead of after.

use std::time::Duration;

use odysseus_engine::runtime::ExecError;
use russh::client::Msg;
use russh::{Channel, ChannelMsg};

use super::session::Session;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

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

    pub fn lock_path(&self) -> String {
        lock_path(&self.service)
    }

    pub fn holder_path(&self) -> String {
        holder_path(&self.service)
    }
}

/// Where the lock files live: a directory of its own, writable by everyone and *not*
/// sticky, so that deploy users other than the one who first locked (root, another
/// admin) can lock, write the holder and release — in the sticky /run/lock itself,
/// another user's files could not be written (and with `fs.protected_regular`, not even
/// opened).
pub const LOCK_DIR: &str = "/run/lock/odysseus";

pub fn lock_path(service: &str) -> String {
    format!("{LOCK_DIR}/{service}.lock")
}

pub fn holder_path(service: &str) -> String {
    format!("{LOCK_DIR}/{service}.holder")
}

pub fn pid_path(service: &str) -> String {
    format!("{LOCK_DIR}/{service}.pid")
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

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Before `flock`: `$1` lock file, `$2` holder file, `$3` pid file, `$4` mode, `$5` our
/// holder line, `$6` the script below. A renewal may find the lock still held by our own
/// loop of a connection the server has not noticed is dead (a real sshd can keep it for
/// hours): if the holder file names us, that loop is ours — stop it, then wait a little
/// for the lock. It is stopped only if the pid file is ours and that pid's command line
/// carries our holder line: a stale or planted pid never gets a signal. A fresh take never
/// waits: a second operator is refused at once.
const OUTER: &str = r#"umask 0
mkdir -p /run/lock/odysseus 2>/dev/null; chmod 0777 /run/lock/odysseus 2>/dev/null
[ -d /run/lock/odysseus ] && [ -w /run/lock/odysseus ] || exit 77
if [ "$4" = renew ] && ! flock -n "$1" true; then
  { read -r cur < "$2"; } 2>/dev/null || cur=
  { read -r p < "$3"; } 2>/dev/null || p=
  if [ "$cur" = "$5" ] && [ -O "$3" ] && [ -n "$p" ] && tr '\0' '\n' < "/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "$5"; then
    kill "$p" 2>/dev/null
  fi
fi
if [ "$4" = renew ]; then wait=-w8; else wait=-n; fi
exec flock $wait -E 75 "$1" sh -c "$6" "$5" "$2" "$4" "$3""#;

/// Run under `flock`: `$0` our holder line, `$1` holder file, `$2` mode, `$3` pid file.
/// Exit 76: not ours any more (prints who holds it); 77: the holder file cannot be
/// written. Then the fence loop: each question `? N` gets `ok N` or `lost N <holder>`.
const SCRIPT: &str = r#"h=$0; f=$1
if [ "$2" = renew ]; then { read -r cur < "$f"; } 2>/dev/null || cur=; [ "$cur" = "$h" ] || { printf 'lost %s\n' "$cur"; exit 76; }; fi
printf '%s\n' "$h" > "$f" || exit 77
echo $$ > "$3" || exit 77
echo locked
while read -r _ n; do { read -r cur < "$f"; } 2>/dev/null || cur=; if [ "$cur" = "$h" ]; then echo "ok $n"; else printf 'lost %s %s\n' "$n" "$cur"; fi; done"#;

/// The held lock: an open channel running the fence loop.
pub struct HeldLock {
    channel: Channel<Msg>,
    /// The number of the last question; answers to earlier ones (a check that was
    /// cancelled before it read its answer) are skipped.
    asked: u64,
    /// What arrived and is not a whole line yet.
    pending: Vec<u8>,
}

/// Takes the lock on the host behind `session`.
pub async fn take(session: &Session, claim: &Claim, mode: Take) -> Result<HeldLock, LockError> {
    let mut channel = session.channel_open_session().await.map_err(|e| {
        LockError::Failed(ExecError::Retryable(format!(
            "opening the lock channel: {e}"
        )))
    })?;
    let command = format!(
        "sh -c {} sh {} {} {} {} {} {}",
        shell_quote(OUTER),
        claim.lock_path(),
        claim.holder_path(),
        pid_path(&claim.service),
        if mode == Take::Renew {
            "renew"
        } else {
            "fresh"
        },
        shell_quote(&claim.holder),
        shell_quote(SCRIPT),
    );
    channel
        .exec(true, command)
        .await
        .map_err(|e| LockError::Failed(ExecError::Retryable(format!("taking the lock: {e}"))))?;
    let mut said = Vec::new();
    let verdict = tokio::time::timeout(ANSWER_TIMEOUT, async {
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    said.extend_from_slice(&data);
                    if said.ends_with(b"\n") {
                        break;
                    }
                }
                ChannelMsg::ExitStatus { exit_status } => return Some(exit_status),
                _ => {}
            }
        }
        None
    })
    .await;
    let verdict = match verdict {
        Ok(v) => v,
        Err(_) => {
            // The server may yet grant it: close the channel so a late grant ends too.
            let _ = channel.close().await;
            return Err(LockError::Failed(ExecError::Retryable(
                "taking the lock timed out".into(),
            )));
        }
    };
    let line = String::from_utf8_lossy(&said).trim().to_string();
    if line == "locked" {
        return Ok(HeldLock {
            channel,
            asked: 0,
            pending: Vec::new(),
        });
    }
    if let Some(holder) = line.strip_prefix("lost") {
        return Err(LockError::Lost(holder.trim().to_string()));
    }
    match verdict {
        Some(75) => {
            let holder = super::exec(
                session,
                &format!("cat {}", claim.holder_path()),
                ANSWER_TIMEOUT,
            )
            .await
            .map(|(_, out)| String::from_utf8_lossy(&out).trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "another process".into());
            Err(LockError::Held(holder))
        }
        Some(77) => Err(LockError::Failed(ExecError::Permanent(format!(
            "cannot write the lock files in {LOCK_DIR} on the server (permissions? a full /run?)"
        )))),
        other => Err(LockError::Failed(ExecError::Retryable(format!(
            "taking the lock failed (exit {other:?}): {line}"
        )))),
    }
}

impl HeldLock {
    /// Asks the loop whether the lock is still ours. `Failed` means the channel itself is
    /// gone (the connection dropped): take the lock again with [`Take::Renew`].
    pub async fn check(&mut self) -> Result<(), LockError> {
        let gone = |what: &str| {
            LockError::Failed(ExecError::OutcomeUnknown(format!("lock channel {what}")))
        };
        self.asked += 1;
        let n = self.asked.to_string();
        self.channel
            .data(format!("? {n}\n").as_bytes())
            .await
            .map_err(|_| gone("closed"))?;
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, async {
            loop {
                // Whole lines already here: the answer to this question, or stale ones.
                while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.pending.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&line).trim().to_string();
                    if let Some(rest) = line.strip_prefix("ok ") {
                        if rest == n {
                            return Ok(());
                        }
                    } else if let Some(rest) = line.strip_prefix("lost ") {
                        let (m, holder) = rest.split_once(' ').unwrap_or((rest, ""));
                        if m == n {
                            return Err(Some(holder.trim().to_string()));
                        }
                    }
                }
                match self.channel.wait().await {
                    Some(ChannelMsg::Data { data }) => self.pending.extend_from_slice(&data),
                    Some(ChannelMsg::Eof | ChannelMsg::Close | ChannelMsg::ExitStatus { .. })
                    | None => return Err(None),
                    Some(_) => {}
                }
            }
        })
        .await
        .map_err(|_| gone("did not answer"))?;
        match answer {
            Ok(()) => Ok(()),
            Err(Some(holder)) => Err(LockError::Lost(holder)),
            Err(None) => Err(gone("closed")),
        }
    }

    /// Lets go of the lock now (closing the channel ends the loop and `flock`).
    pub async fn release(self) {
        let _ = self.channel.eof().await;
        let _ = self.channel.close().await;
    }
}
