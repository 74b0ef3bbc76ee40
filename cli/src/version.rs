//! Which version a deploy ships when `--image` does not say: the tag deploy.yml pins
//! (`image: repo:TAG`), else the commit deploy.yml's git repository is at — the first 12
//! hex digits of `HEAD`, the Ruby tool's convention, so the image a CI job built for a
//! commit is the one deployed for it. A working tree whose tracked files differ from that
//! commit is refused (the image would not be what the version says); untracked files only
//! warn. Read with the `git` command, as the user's own tooling does.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::exit::UsageError;

/// Characters of the commit in the version.
pub const SHORT: usize = 12;

/// The commit deploy.yml's repository is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The full hex id of `HEAD`.
    pub id: String,
    /// Files git does not track (warned about: they are in no commit).
    pub untracked: Vec<String>,
}

impl Commit {
    pub fn version(&self) -> String {
        self.id.chars().take(SHORT).collect()
    }
}

/// Where deploy.yml lives: git runs there.
fn dir_of(config: &Path) -> PathBuf {
    config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

/// What git printed, or (when it failed) what it said on stderr.
fn git(dir: &Path, args: &[&str]) -> Result<Result<Vec<u8>, String>, UsageError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| {
            UsageError(format!(
                "which version? git cannot be run ({e}); pass --image TAG (the image is `<image>:<TAG>`)"
            ))
        })?;
    Ok(if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    })
}

/// `HEAD`'s full id, whatever the working tree holds (for labels: a container of version
/// V gets the commit only when the commit's id starts with V).
pub fn head_id(config: &Path) -> Option<String> {
    let id = git(
        &dir_of(config),
        &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"],
    )
    .ok()?
    .ok()?;
    Some(String::from_utf8_lossy(&id).trim().to_string()).filter(|s| !s.is_empty())
}

/// The full id of the commit `abbrev` (a version taken from a commit) names in deploy.yml's
/// repository; None when it names none (or is no commit abbreviation at all).
pub fn commit_named(config: &Path, abbrev: &str) -> Option<String> {
    if abbrev.len() < 7 || !abbrev.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = git(
        &dir_of(config),
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{abbrev}^{{commit}}"),
        ],
    )
    .ok()?
    .ok()?;
    Some(String::from_utf8_lossy(&id).trim().to_string()).filter(|s| !s.is_empty())
}

/// The commit of deploy.yml's repository, or None outside a repository.
pub fn head(config: &Path) -> Result<Option<Commit>, UsageError> {
    let dir = dir_of(config);
    if let Err(said) = git(&dir, &["rev-parse", "--show-toplevel"])? {
        if said.contains("not a git repository") {
            return Ok(None);
        }
        // Anything else (say "dubious ownership" on a CI runner) is git's to explain.
        return Err(UsageError(format!(
            "which version? git cannot read the repository of {}: {said}; fix that, or pass --image TAG",
            config.display()
        )));
    }
    let Ok(id) = git(&dir, &["rev-parse", "--verify", "--quiet", "HEAD^{commit}"])? else {
        return Err(UsageError(format!(
            "which version? the git repository of {} has no commit yet; commit, or pass --image TAG",
            config.display()
        )));
    };
    let id = String::from_utf8_lossy(&id).trim().to_string();
    // -z: names as they are, whatever characters they hold. A status git cannot give is
    // never taken for a clean tree.
    let status = git(
        &dir,
        &["status", "--porcelain=v1", "-z", "--untracked-files=normal"],
    )?
    .map_err(|said| {
        UsageError(format!(
            "which version? git cannot tell whether the working tree matches commit {}: {said}; \
                 fix that, or pass --image TAG",
            &id[..SHORT.min(id.len())]
        ))
    })?;
    let (mut changed, mut untracked) = parse_status(&status);
    if !changed.is_empty() {
        changed.sort();
        return Err(UsageError(format!(
            "uncommitted changes to tracked files ({}): the version would be commit {} but the \
             files are not; commit or stash them, or pass --image TAG",
            shorten(&changed),
            &id[..SHORT.min(id.len())]
        )));
    }
    untracked.sort();
    Ok(Some(Commit { id, untracked }))
}

/// `git status --porcelain=v1 -z`: (tracked files that changed, untracked files), without
/// odysseus's own state dir.
fn parse_status(status: &[u8]) -> (Vec<String>, Vec<String>) {
    let mut changed = Vec::new();
    let mut untracked = Vec::new();
    let mut entries = status.split(|b| *b == 0).filter(|e| !e.is_empty());
    while let Some(entry) = entries.next() {
        // "XY name": two status letters, a space, the name (bytes: names need not be UTF-8).
        let (code, name) = (
            entry.get(..2).unwrap_or(entry),
            entry.get(3..).unwrap_or_default(),
        );
        let name = String::from_utf8_lossy(name).into_owned();
        // odysseus's own state dir beside deploy.yml is no part of the app, even when
        // it was committed by mistake (its journal changes at every deploy).
        let own = name.starts_with(".odysseus/") || name.contains("/.odysseus/");
        if code == b"??" {
            if !own {
                untracked.push(name);
            }
        } else if code != b"!!" {
            if !own {
                changed.push(name);
            }
            // A rename or copy (staged or in the worktree) names its source next.
            if code.iter().any(|c| *c == b'R' || *c == b'C') {
                entries.next();
            }
        }
    }
    (changed, untracked)
}

fn shorten(names: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut text = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// The tag to deploy: `--image`, else deploy.yml's, else the commit's (warning about
/// untracked files). `None` only outside a git repository.
pub fn choose(
    given: Option<&str>,
    pinned: Option<&str>,
    config: &Path,
) -> Result<Option<String>, UsageError> {
    if let Some(tag) = given.or(pinned) {
        return Ok(Some(tag.to_string()));
    }
    match head(config)? {
        Some(commit) => {
            if !commit.untracked.is_empty() {
                eprintln!(
                    "odysseus: warning: untracked files are in no commit, so not in version {}: {}",
                    commit.version(),
                    shorten(&commit.untracked)
                );
            }
            Ok(Some(commit.version()))
        }
        None => Ok(None),
    }
}

/// What to say when there is no version at all.
pub fn none_message(config: &Path) -> String {
    format!(
        "which version? pass --image TAG (the image is `<image>:<TAG>`); {} is not in a git \
         repository, whose commit would name it",
        config.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_entries_renames_and_any_bytes_in_names() {
        let status = b" M deploy.yml\0 M .odysseus/journal/db\0R  new.rb\0old.rb\0 R wt-new\0wt-old\0?? notes.txt\0?? .odysseus/\0?? app/.odysseus/\0?? ab\xc3\xa9.txt\0 M \xff.bin\0";
        let (changed, untracked) = parse_status(status);
        assert_eq!(
            changed,
            vec!["deploy.yml", "new.rb", "wt-new", "\u{fffd}.bin"]
        );
        assert_eq!(untracked, vec!["notes.txt", "ab\u{e9}.txt"]);
        assert_eq!(parse_status(b""), (vec![], vec![]));
    }
}
