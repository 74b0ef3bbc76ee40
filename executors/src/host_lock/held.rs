//! A held lock: the fence loop of `script` running on a channel this process owns — an
//! SSH exec channel on a server, a child process's pipes on `local`. The same loop is the
//! host-level fence: each side effect first sends a line and the loop answers `ok` only
//! while the holder file still names this holder. A lock broken by `odysseus lock
//! release`, or taken by someone else while our connection was down, is seen before the
//! next side effect instead of after.

use std::process::Stdio;
use std::time::Duration;

use odysseus_engine::runtime::ExecError;
use russh::client::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::script::{self, EXIT_HELD, EXIT_LOST, EXIT_UNSAFE, EXIT_UNWRITABLE, LOCK_DIR};
use super::{Claim, LockError, LockFiles, Take};
use crate::ssh::Session;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the loop runs.
enum LockChannel {
    Ssh(Channel<Msg>),
    Local(Box<LocalLoop>),
}

/// The loop as this process's child, fed through its stdin.
struct LocalLoop {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    /// Its output ended and its status was read.
    exited: bool,
}

/// What the loop's side said next.
enum Heard {
    Data(Vec<u8>),
    /// Its exit status; output may still follow (sshd can send the status before the last
    /// bytes of output).
    Exit(Option<u32>),
    /// Nothing more will come.
    Closed,
}

impl LockChannel {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), ()> {
        match self {
            LockChannel::Ssh(channel) => channel.data(bytes).await.map_err(|_| ()),
            LockChannel::Local(l) => match &mut l.stdin {
                Some(s) => s.write_all(bytes).await.map_err(|_| ()),
                None => Err(()),
            },
        }
    }

    /// Cancel-safe: nothing read is lost when the wait is abandoned.
    async fn next(&mut self) -> Heard {
        match self {
            LockChannel::Ssh(channel) => loop {
                match channel.wait().await {
                    Some(ChannelMsg::Data { data }) => return Heard::Data(data.to_vec()),
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        return Heard::Exit(Some(exit_status))
                    }
                    Some(ChannelMsg::Close) | None => return Heard::Closed,
                    Some(_) => {}
                }
            },
            LockChannel::Local(l) => {
                if l.exited {
                    return Heard::Closed;
                }
                let mut buf = [0u8; 4096];
                match l.stdout.read(&mut buf).await {
                    Ok(n) if n > 0 => Heard::Data(buf[..n].to_vec()),
                    // The end of its output: what remains is its status.
                    _ => {
                        l.exited = true;
                        Heard::Exit(
                            l.child
                                .wait()
                                .await
                                .ok()
                                .and_then(|s| s.code())
                                .map(|c| c as u32),
                        )
                    }
                }
            }
        }
    }

    /// Ends the loop, and the lock with it: its input closes.
    async fn close(self) {
        match self {
            LockChannel::Ssh(channel) => {
                let _ = channel.eof().await;
                let _ = channel.close().await;
            }
            LockChannel::Local(l) => {
                let LocalLoop {
                    mut child, stdin, ..
                } = *l;
                drop(stdin);
                if tokio::time::timeout(Duration::from_secs(5), child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.kill().await;
                }
            }
        }
    }
}

/// The held lock: a channel running the fence loop.
pub struct HeldLock {
    channel: LockChannel,
    /// The number of the last question; answers to earlier ones (a check that was
    /// cancelled before it read its answer) are skipped.
    asked: u64,
    /// What arrived and is not a whole line yet.
    pending: Vec<u8>,
}

/// Takes the lock on the server behind `session`; `socket` is its Docker engine's.
pub async fn take_over_ssh(
    session: &Session,
    socket: &str,
    claim: &Claim,
    mode: Take,
) -> Result<HeldLock, LockError> {
    let failed = |e: String| LockError::Failed(ExecError::Retryable(e));
    let channel = session
        .channel_open_session()
        .await
        .map_err(|e| failed(format!("opening the lock channel: {e}")))?;
    let files = LockFiles::of(&claim.service);
    let command = script::take_command(socket, &files, mode == Take::Renew);
    channel
        .exec(true, command)
        .await
        .map_err(|e| failed(format!("taking the lock: {e}")))?;
    take(LockChannel::Ssh(channel), &claim.holder).await
}

/// Takes the lock on this machine; `socket` is the local Docker engine's.
pub async fn take_local(socket: &str, claim: &Claim) -> Result<HeldLock, LockError> {
    let files = LockFiles::of(&claim.service);
    let command = script::take_command(socket, &files, false);
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group: a Ctrl-C at the terminal goes to odysseus, which records
        // the interruption while it still holds the lock, not to the lock's loop.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            LockError::Failed(ExecError::Permanent(format!(
                "starting the local lock (sh, flock): {e}"
            )))
        })?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped");
    take(
        LockChannel::Local(Box::new(LocalLoop {
            child,
            stdin,
            stdout,
            exited: false,
        })),
        &claim.holder,
    )
    .await
}

async fn take(mut channel: LockChannel, holder: &str) -> Result<HeldLock, LockError> {
    // Who we are goes on the script's input, never its command line.
    if channel
        .send(script::holder_line(holder).as_bytes())
        .await
        .is_err()
    {
        channel.close().await;
        return Err(LockError::Failed(ExecError::Retryable(
            "the lock script ended before it was told who locks".into(),
        )));
    }
    let mut said = Vec::new();
    let verdict = tokio::time::timeout(ANSWER_TIMEOUT, async {
        let mut status = None;
        loop {
            match channel.next().await {
                Heard::Data(data) => {
                    said.extend_from_slice(&data);
                    if said.ends_with(b"\n") {
                        return status;
                    }
                }
                // The line that says why may still come after the status.
                Heard::Exit(code) => status = code,
                Heard::Closed => return status,
            }
        }
    })
    .await;
    let verdict = match verdict {
        Ok(v) => v,
        Err(_) => {
            // The host may yet grant it: close the channel so a late grant ends too.
            channel.close().await;
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
    // The loop is not running: whatever is left ends now.
    channel.close().await;
    if let Some(holder) = line.strip_prefix("lost") {
        return Err(LockError::Lost(holder.trim().to_string()));
    }
    if let Some(why) = line.strip_prefix("unsafe ") {
        return Err(LockError::Failed(ExecError::Permanent(format!(
            "odysseus will not use its lock directory: {why}"
        ))));
    }
    if let Some(holder) = line.strip_prefix("held") {
        let holder = holder.trim();
        return Err(LockError::Held(if holder.is_empty() {
            "another process".into()
        } else {
            holder.to_string()
        }));
    }
    match verdict {
        Some(EXIT_UNWRITABLE) => Err(LockError::Failed(ExecError::Permanent(format!(
            "cannot write the lock files in {LOCK_DIR} (permissions? a full /run?)"
        )))),
        // Its line was lost on the way: the status alone still says which case it is.
        Some(EXIT_HELD) => Err(LockError::Held("another process".into())),
        Some(EXIT_LOST) => Err(LockError::Lost(String::new())),
        Some(EXIT_UNSAFE) => Err(LockError::Failed(ExecError::Permanent(format!(
            "odysseus will not use its lock directory {LOCK_DIR} (run `odysseus status` for why)"
        )))),
        other => Err(LockError::Failed(ExecError::Retryable(format!(
            "taking the lock failed (exit {other:?}): {line}"
        )))),
    }
}

/// What the loop answered to one question.
enum Answer {
    Ok,
    /// The holder file names someone else (or nobody).
    Lost(String),
    /// A journal append found the copy shorter than the offset it was sent for.
    Gap(u64),
    /// A journal append could not write.
    Fail,
}

/// Why a journal append did not happen.
#[derive(Debug)]
pub enum AppendError {
    Lock(LockError),
    /// The host's copy is this many bytes, shorter than the offset sent: read it again.
    Gap(u64),
    /// The copy could not be written (a full disk, permissions).
    Unwritable,
}

impl HeldLock {
    /// Asks the loop whether the lock is still ours. `Failed` means the channel itself is
    /// gone (the connection dropped): take the lock again with [`Take::Renew`].
    pub async fn check(&mut self) -> Result<(), LockError> {
        self.asked += 1;
        let n = self.asked;
        match self.ask(format!("? {n}\n").into_bytes(), n).await? {
            Answer::Ok => Ok(()),
            Answer::Lost(holder) => Err(LockError::Lost(holder)),
            Answer::Gap(_) | Answer::Fail => Err(LockError::Failed(ExecError::OutcomeUnknown(
                "the lock loop answered a check with a journal answer".into(),
            ))),
        }
    }

    /// Appends `lines` (each without its newline) to the host's copy of `deployment`'s
    /// journal at byte `offset`, durable on the host's disk when this returns `Ok` — and
    /// only if the lock is still ours: the loop checks under the journal directory's lock.
    pub async fn append_journal(
        &mut self,
        deployment: &str,
        offset: u64,
        lines: &[String],
    ) -> Result<(), AppendError> {
        self.asked += 1;
        let n = self.asked;
        let mut command = format!("j {n} {deployment} {offset} {}\n", lines.len());
        for line in lines {
            command.push_str(line);
            command.push('\n');
        }
        match self.ask(command.into_bytes(), n).await {
            Ok(Answer::Ok) => Ok(()),
            Ok(Answer::Lost(holder)) => Err(AppendError::Lock(LockError::Lost(holder))),
            Ok(Answer::Gap(size)) => Err(AppendError::Gap(size)),
            Ok(Answer::Fail) => Err(AppendError::Unwritable),
            Err(e) => Err(AppendError::Lock(e)),
        }
    }

    /// Sends one question, numbered `n`, and waits for its answer; answers to earlier
    /// questions (cancelled before they read theirs) are skipped.
    async fn ask(&mut self, question: Vec<u8>, n: u64) -> Result<Answer, LockError> {
        let gone = |what: &str| {
            LockError::Failed(ExecError::OutcomeUnknown(format!("lock channel {what}")))
        };
        let n = n.to_string();
        self.channel
            .send(&question)
            .await
            .map_err(|_| gone("closed"))?;
        let answer = tokio::time::timeout(ANSWER_TIMEOUT, async {
            loop {
                while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.pending.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&line).trim().to_string();
                    let (word, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                    let (m, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                    if m != n {
                        continue;
                    }
                    match word {
                        "ok" => return Some(Answer::Ok),
                        "lost" => return Some(Answer::Lost(rest.trim().to_string())),
                        "gap" => return Some(Answer::Gap(rest.trim().parse().unwrap_or(0))),
                        "fail" => return Some(Answer::Fail),
                        _ => {}
                    }
                }
                match self.channel.next().await {
                    Heard::Data(data) => self.pending.extend_from_slice(&data),
                    Heard::Exit(_) | Heard::Closed => return None,
                }
            }
        })
        .await
        .map_err(|_| gone("did not answer"))?;
        answer.ok_or_else(|| gone("closed"))
    }

    /// Lets go of the lock now (closing the channel ends the loop and `flock`).
    pub async fn release(self) {
        self.channel.close().await;
    }
}
