//! The deploy lock's shell, the same on `local` and on a server: `flock(1)` and a few
//! coreutils, run by `sh` as a child of this process (local) or on an SSH exec channel.
//!
//! Who may touch the lock directory is who may use the Docker engine: it is
//! `/run/lock/odysseus`, owned by root or a member of the engine socket's group, group
//! that group, mode 2770. Any deploy user (root, or a user in the docker group — already
//! root's equal through the engine) can lock, write the holder and release after another;
//! every other user cannot even look inside, so cannot plant a link, hold the lock or
//! forge the holder. Inside a directory only those users can write, opening by path is
//! safe: nothing in it can have been redirected by anyone else.
//!
//! A directory left open by an earlier odysseus (0777) is never reused: anything may have
//! been planted in it, and another user may still hold it open (an open directory stays
//! writable through its descriptor after a chmod, and a flood of files can outrun any
//! scrub). Taking the lock moves it aside (`mv -T` to `odysseus.open-<random>`, on tmpfs:
//! gone at reboot) and makes a fresh one; a read-only look only reports it. A directory of
//! another group than the engine socket's is refused, never moved (a wrong `docker_socket`
//! must not split a live lock). A directory that another user made (in the world-writable /run/lock
//! anyone can) is refused, never used, with the command that fixes it. The holder line
//! never appears on a command line (`ps` would show it to everyone): it comes on stdin
//! and lives in the loop's environment, which only its owner can read.

/// The directory, and the exit codes the scripts end with.
pub const LOCK_DIR: &str = "/run/lock/odysseus";
/// 75: held by another (`held <holder>`), 76: not ours any more (`lost <holder>`), 78:
/// the directory is not safe (`unsafe <why>`); each prints its line first. 77: the files
/// cannot be written.
pub const EXIT_HELD: u32 = 75;
pub const EXIT_LOST: u32 = 76;
pub const EXIT_UNWRITABLE: u32 = 77;
pub const EXIT_UNSAFE: u32 = 78;

/// Before every script: `$1` is the Docker engine's socket, whose group may deploy.
/// `lockdir create|check` makes the directory safe or exits 78 with `unsafe <why>`;
/// `check` returns 1 when there is no directory (nothing is locked then).
const PRELUDE: &str = r#"d=/run/lock/odysseus
sock=$1
g=$(stat -L -c %g "$sock" 2>/dev/null) || g=0
shift
me=$(id -u)
umask 007
groups_of() { id -G "$1" 2>/dev/null || { n=$(getent passwd "$1" 2>/dev/null | cut -d: -f1); [ -n "$n" ] && id -G "$n"; }; }
trusted() { [ "$1" = 0 ] || [ "$1" = "$me" ] || groups_of "$1" | tr ' ' '\n' | grep -qxF "$g"; }
unsafe() { printf 'unsafe %s\n' "$*"; exit 78; }
fresh() { if (umask 077; mkdir "$d") 2>/dev/null; then chgrp "$g" "$d" && chmod 2770 "$d" || { rmdir "$d"; exit 77; }; fi; }
lockdir() {
  mode=$1
  if [ ! -e "$d" ] && [ ! -L "$d" ]; then
    [ "$mode" = create ] || return 1
    fresh
  fi
  [ -L "$d" ] && unsafe "$d is a symbolic link; remove it (as root: rm $d)"
  [ -d "$d" ] || { [ -e "$d" ] && unsafe "$d is not a directory; remove it (as root: rm $d)"; exit 77; }
  set -- $(stat -c '%u %g %a' "$d")
  trusted "$1" || unsafe "$d belongs to uid $1, a user without access to the Docker engine; remove it (as root: rm -r $d)"
  if [ $((0$3 & 07)) -ne 0 ]; then
    [ "$mode" = create ] || unsafe "$d is open to other users (mode $3), as an earlier odysseus left it; the next deploy moves it aside"
    aside="$d.open-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    mv -T "$d" "$aside" 2>/dev/null || unsafe "$d is open to other users (mode $3), as an earlier odysseus left it; as root: mv -T $d $aside"
    fresh
    [ -d "$d" ] || exit 77
    set -- $(stat -c '%u %g %a' "$d")
  fi
  [ "$2" = "$g" ] || unsafe "$d belongs to group $2, not to group $g of the Docker engine's socket ($sock); check ssh.docker_socket, or as root: chgrp $g $d"
  return 0
}
"#;

/// Taking the lock: `$1` lock file, `$2` holder file, `$3` pid file, `$4` mode (`fresh`
/// or `renew`), `$5` the loop below, `$6` the service's journal directory (made here,
/// see [`JOURNAL_DIRS`]); our holder line is the first line of stdin. A renewal
/// may find the lock still held by our own loop of a connection the server has not noticed
/// is dead (a real sshd can keep it for hours): if the holder file names us, that loop is
/// ours — stop it, then wait a little for the lock. It is stopped only if that process's
/// environment (readable by its owner alone) carries our holder line: a stale pid, or
/// another user's process, never gets a signal. A fresh take never waits: a second operator is refused at once, told who holds
/// it.
const TAKE: &str = r#"IFS= read -r ODYSSEUS_HOLDER || exit 77
export ODYSSEUS_HOLDER
lockdir create
[ -w "$d" ] || exit 77
journaldir "$6"
if [ "$4" = renew ] && ! flock -n "$1" true; then
  { read -r cur < "$2"; } 2>/dev/null || cur=
  { read -r p < "$3"; } 2>/dev/null || p=
  if [ "$cur" = "$ODYSSEUS_HOLDER" ] && [ -n "$p" ] && tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qxF -- "ODYSSEUS_HOLDER=$ODYSSEUS_HOLDER"; then
    kill "$p" 2>/dev/null
  fi
fi
if [ "$4" = renew ]; then wait=-w8; else wait=-n; fi
flock $wait -E 75 "$1" sh -c "$5" sh "$2" "$4" "$3" "$6"
rc=$?
if [ $rc = 75 ]; then { read -r cur < "$2"; } 2>/dev/null || cur=; printf 'held %s\n' "$cur"; fi
exit $rc"#;

/// Run under `flock`, our holder line in `$ODYSSEUS_HOLDER`: `$1` holder file, `$2` mode,
/// `$3` pid file, `$4` the service's journal directory. Exit 76: not ours any more (prints
/// who holds it); 77: the holder file cannot be written. Then the fence loop, which ends,
/// and the lock with it, when its input closes (this process or its connection is gone):
/// - `? N` gets `ok N` while the holder file names us, else `lost N <holder>`;
/// - `j N DEPLOYMENT OFFSET COUNT`, then COUNT lines: appends them to that deployment's
///   copy of the journal and makes them durable (`sync` of the file, and of the directory
///   when the file is new) before answering `ok N` — only while the holder file names us
///   (`lost N <holder>` otherwise, nothing written), and only at OFFSET: a copy shorter
///   than that gets `gap N <size>` (the writer's idea of it is stale), a longer one is cut
///   back to it first (what lies beyond was never acknowledged: a torn write). The check
///   and the write happen under `flock` of the directory's `.lock`, which a reader takes
///   shared: a new holder that reads the copies after writing its holder line sees every
///   record an old holder's loop acknowledged. (The lock is let go by reopening the
///   descriptor, and the size of the file it wrote last is remembered, not asked again:
///   every process spawned here is paid on every batch of steps.)
pub const FENCE_LOOP: &str = r#"h=$ODYSSEUS_HOLDER; f=$1; jd=$4
ours() { { read -r cur < "$f"; } 2>/dev/null || cur=; [ "$cur" = "$h" ]; }
if [ "$2" = renew ]; then ours || { printf 'lost %s\n' "$cur"; exit 76; }; fi
printf '%s\n' "$h" > "$f" || exit 77
echo $$ > "$3" || exit 77
exec 8>>"$jd/.lock" || exit 77
unlock() { exec 8>&- 8>>"$jd/.lock"; }
lf=; ls=
echo locked
while read -r c n a b k; do
  if [ "$c" = j ]; then
    body=; i=0
    while [ "$i" -lt "$k" ] && IFS= read -r l; do body="$body$l
"; i=$((i+1)); done
    case $a in ''|*[!0-9a-f]*) echo "fail $n"; continue;; esac
    jf="$jd/$a.journal"
    flock 8
    if ! ours; then unlock; printf 'lost %s %s\n' "$n" "$cur"; continue; fi
    new=
    if [ "$jf" = "$lf" ] && [ "$b" = "$ls" ] && [ -e "$jf" ]; then s=$ls
    elif [ -e "$jf" ]; then s=$(stat -c %s "$jf") || s=0
    else s=0; new=1; fi
    lf=
    if [ "$s" -lt "$b" ]; then unlock; echo "gap $n $s"; continue; fi
    if [ "$s" -gt "$b" ]; then truncate -s "$b" "$jf" || { unlock; echo "fail $n"; continue; }; fi
    if printf '%s' "$body" >> "$jf" && sync "$jf" && { [ -z "$new" ] || sync "$jd"; }; then
      lf=$jf; ls=$((b + ${#body})); echo "ok $n"
    else echo "fail $n"; fi
    unlock
  elif ours; then echo "ok $n"; else printf 'lost %s %s\n' "$n" "$cur"; fi
done"#;

/// Where each host keeps its copy of the journal: `/var/lib/odysseus/journal/<service>/`,
/// one file per deployment. Made by the take script; the same users as the lock directory
/// may use it (root, and the Docker engine socket's group: the directories are that
/// group's, mode 2770). /var/lib is root's, so a deploy user outside root cannot make the
/// first directory: the script says the one command root runs once.
pub const JOURNAL_ROOT: &str = "/var/lib/odysseus";

/// `journaldir DIR`: makes the journal directories down to DIR, the docker group's, or
/// exits 78 with `unsafe <why and the fix>`.
const JOURNAL_DIRS: &str = r#"journaldir() {
  jb=/var/lib/odysseus
  for x in "$jb" "$jb/journal" "$1"; do
    [ -L "$x" ] && unsafe "$x is a symbolic link; remove it (as root: rm $x)"
    if [ ! -d "$x" ]; then
      [ -e "$x" ] && unsafe "$x is not a directory; remove it (as root: rm $x)"
      mkdir "$x" 2>/dev/null || unsafe "cannot make $x, where this server keeps its copy of the deploy journal ($(id -un) may not write in $(dirname "$x")); once, as root: install -d -m 2770 -g $g $jb"
    fi
    # Set up once (setgid marks it done): no process spawned on later takes.
    if [ -O "$x" ] && ! [ -g "$x" ]; then chgrp "$g" "$x" 2>/dev/null; chmod 2770 "$x" 2>/dev/null; fi
  done
  [ -w "$1" ] && [ -x "$1" ] || unsafe "cannot write in $1, where this server keeps its copy of the deploy journal; as root: chgrp -R $g $jb && chmod -R g+rwX $jb"
}
"#;

/// Who holds it, without taking it: `$1` lock file, `$2` holder file. Prints `free`, or
/// `held` and the holder line.
const PROBE: &str = r#"lockdir check || { echo free; exit 0; }
[ -e "$1" ] || { echo free; exit 0; }
if flock -n "$1" true 2>/dev/null; then echo free; else printf 'held '; cat "$2" 2>/dev/null; echo; fi"#;

/// Breaking it: the files go, so the next locker locks a new file (`$@` the files).
const BREAK: &str = r#"lockdir check || exit 0
rm -f -- "$@""#;

/// Single quotes for `sh`, whatever the text holds.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn command(body: &str, socket: &str, args: &[&str]) -> String {
    let mut out = format!(
        "sh -c {} sh {}",
        shell_quote(&format!("{PRELUDE}{JOURNAL_DIRS}{body}")),
        shell_quote(socket)
    );
    for a in args {
        out.push(' ');
        out.push_str(&shell_quote(a));
    }
    out
}

/// The take script; send [`holder_line`] as its first input.
pub fn take_command(socket: &str, files: &super::LockFiles, renew: bool) -> String {
    command(
        TAKE,
        socket,
        &[
            &files.lock,
            &files.holder,
            &files.pid,
            if renew { "renew" } else { "fresh" },
            FENCE_LOOP,
            &files.journal,
        ],
    )
}

/// What the take script reads first: who we are, one line.
pub fn holder_line(holder: &str) -> String {
    format!("{holder}\n")
}

pub fn probe_command(socket: &str, files: &super::LockFiles) -> String {
    command(PROBE, socket, &[&files.lock, &files.holder])
}

pub fn break_command(socket: &str, files: &super::LockFiles) -> String {
    command(BREAK, socket, &[&files.lock, &files.holder, &files.pid])
}

/// Reading a service's copies of the journal: `$1` its directory, `$2` one deployment id
/// or empty for all. Each copy comes as `@@ NAME SIZE` and then exactly SIZE bytes, read
/// under the directory's lock taken shared (an append in progress finishes first); a copy
/// that is not a readable file as `@! NAME why` (never skipped in silence: it may hold
/// the only record of an unfinished deployment).
const READ_JOURNAL: &str = r#"jd=$1; only=$2
[ -d "$jd" ] || exit 0
cd "$jd" || exit 77
{ exec 8>>.lock && flock -s 8; } 2>/dev/null
for x in *.journal; do
  [ -e "$x" ] || [ -L "$x" ] || continue
  [ -z "$only" ] || [ "$x" = "$only.journal" ] || continue
  if [ -L "$x" ] || [ ! -f "$x" ]; then printf '@! %s is not a regular file\n' "$x"; continue; fi
  [ -r "$x" ] || { printf '@! %s cannot be read by %s\n' "$x" "$(id -un)"; continue; }
  n=$(wc -c < "$x" 2>/dev/null) || { printf '@! %s cannot be read\n' "$x"; continue; }
  printf '@@ %s %s\n' "$x" "$n"
  head -c "$n" "$x"
done
exit 0"#;

/// Pruning a service's copies: `$1` its directory, `$2` how many deployments to keep, then
/// the ids never to remove (the unfinished one). The newest are kept (ids sort by time).
const PRUNE_JOURNAL: &str = r#"jd=$1; keep=$2; shift 2
[ -d "$jd" ] || exit 0
cd "$jd" || exit 77
exec 8>>.lock && flock 8 || exit 77
n=0
for x in $(ls -1 | grep -E '^[0-9a-f]{20}\.journal$' | sort -r); do
  n=$((n+1)); [ "$n" -le "$keep" ] && continue
  id=${x%.journal}; spare=
  for s in "$@"; do [ "$s" = "$id" ] && spare=1; done
  [ -n "$spare" ] || { rm -f -- "$x" && echo "pruned $id"; }
done
exit 0"#;

pub fn read_journal_command(socket: &str, files: &super::LockFiles, only: Option<&str>) -> String {
    command(READ_JOURNAL, socket, &[&files.journal, only.unwrap_or("")])
}

pub fn prune_journal_command(
    socket: &str,
    files: &super::LockFiles,
    keep: usize,
    spare: &[String],
) -> String {
    let keep = keep.to_string();
    let mut args: Vec<&str> = vec![&files.journal, &keep];
    args.extend(spare.iter().map(String::as_str));
    command(PRUNE_JOURNAL, socket, &args)
}
