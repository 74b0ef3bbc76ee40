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
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating the state dir {}", dir.display()))?;
    Journal::open(&path).map_err(|e| match e {
        journal::Error::Busy { .. } => {
            anyhow::anyhow!(UsageError(format!(
                "{e}; wait for it to finish (or stop it) and run the command again"
            )))
        }
        other => anyhow::anyhow!(other),
    })
}
