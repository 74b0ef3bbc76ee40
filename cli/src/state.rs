//! The state dir and the journal in it, shared by every command that reads or writes it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use odysseus_engine::journal::{self, Journal};

use crate::exit::UsageError;
use crate::GlobalArgs;

/// --state-dir, else ODYSSEUS_STATE_DIR (clap reads it), else `.odysseus/` beside deploy.yml.
pub fn state_dir(global: &GlobalArgs) -> PathBuf {
    if let Some(dir) = &global.state_dir {
        return dir.clone();
    }
    let config_dir = global
        .config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    config_dir.join(".odysseus")
}

/// The state dir holds the journal (failure reasons, who deployed what) and keys: only
/// its owner may enter it. A dir someone else owns is refused rather than used.
fn private(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("reading the state dir {}", dir.display()))?;
    // Linux: /proc/self belongs to this process's effective user.
    if let Ok(me) = std::fs::metadata("/proc/self").map(|m| m.uid()) {
        if meta.uid() != me {
            return Err(UsageError(format!(
                "the state dir {} belongs to another user (uid {}): use your own (--state-dir)",
                dir.display(),
                meta.uid()
            ))
            .into());
        }
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making the state dir {} private (0700)", dir.display()))?;
    }
    Ok(())
}

/// Opens the journal; `create` is false for read-only commands, which then say plainly
/// that nothing was deployed from here yet.
pub fn open_journal(global: &GlobalArgs, create: bool) -> anyhow::Result<Journal> {
    let dir = state_dir(global);
    let path = dir.join("journal");
    if !create && !path.exists() {
        return Err(UsageError(format!(
            "no journal in {}: nothing was deployed with this state dir yet (see --state-dir)",
            dir.display()
        ))
        .into());
    }
    for (at, what) in [
        (&dir, "the state dir"),
        (&path, "the journal (a directory odysseus makes)"),
    ] {
        if let Some(kind) = std::fs::metadata(at).ok().and_then(|m| not_a_dir(&m)) {
            return Err(UsageError(format!(
                "{what} {} is {kind}, not a directory; move it away or pass --state-dir with a \
                 directory of its own",
                at.display()
            ))
            .into());
        }
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the state dir {}", dir.display()))?;
    private(&dir)?;
    Journal::open(&path).map_err(|e| match e {
        journal::Error::Busy { .. } => {
            anyhow::anyhow!(UsageError(format!(
                "{e}; wait for it to finish (or stop it) and run the command again"
            )))
        }
        other => anyhow::anyhow!(other),
    })
}

/// What a path that should be a directory is instead, in words (None: a directory).
fn not_a_dir(meta: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        None
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else if t.is_fifo() {
        Some("a pipe")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("a file")
    }
}

/// What to say about a journal that sled or our checks found damaged: where it is, that
/// nothing was changed, and what to do.
pub fn damaged_journal_advice(global: &GlobalArgs) -> String {
    let path = state_dir(global).join("journal");
    format!(
        "the journal in {p} is damaged (a disk fault, or its files changed by hand); odysseus \
         changed nothing. `odysseus replay --verify ID` names the first bad record of a \
         deployment; `odysseus status` shows what runs on the hosts. To start a new journal, \
         keep this one aside first: mv {p} {p}.damaged",
        p = path.display()
    )
}

/// This journal's identity, as the hosts' marks name it: a random id made with the
/// journal and kept beside it. A wiped journal (a CI runner's fresh checkout) is a new
/// journal, so it never takes another run's mark for its own.
pub fn journal_id(global: &GlobalArgs) -> anyhow::Result<String> {
    let path = state_dir(global).join("journal-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(id.to_string());
        }
    }
    let id = odysseus::files::hex(
        &odysseus::files::random_bytes::<16>().context("reading /dev/urandom")?,
    );
    // A reader never sees half an id.
    odysseus::files::replace(&path, id.as_bytes(), 0o600)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}
