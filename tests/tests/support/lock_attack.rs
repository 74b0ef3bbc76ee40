//! The lock-directory attack of issue 11 §1, the same on this machine and on a server: an
//! unprivileged user plants links where odysseus writes its lock, holder and pid files,
//! pointing at a root-only file and at files that do not exist yet (as
//! `/etc/ld.so.preload` would be), or makes the lock directory itself before root does.
#![allow(dead_code)] // Shared by two test binaries, one machine kind each.

use std::process::{Command, Output};

pub const DIR: &str = "/run/lock/odysseus";

/// How to run a shell on the machine under attack, as root and as `nobody`.
pub struct Machine {
    root: Vec<String>,
    nobody: Vec<String>,
}

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

impl Machine {
    pub fn local() -> Machine {
        Machine {
            root: strings(&["sh", "-c"]),
            nobody: strings(&[
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
            ]),
        }
    }

    /// A fake server of the test bed: a user of that server, in its /run.
    pub fn server(servers_sh: &std::path::Path, name: &str) -> Machine {
        let script = servers_sh.to_string_lossy().into_owned();
        Machine {
            root: strings(&["bash", &script, "as", name, "root"]),
            nobody: strings(&["bash", &script, "as", name, "nobody"]),
        }
    }

    fn run(how: &[String], script: &str) -> Output {
        Command::new(&how[0])
            .args(&how[1..])
            .arg(script)
            .output()
            .unwrap()
    }

    pub fn root(&self, script: &str) -> Output {
        Machine::run(&self.root, script)
    }

    pub fn nobody(&self, script: &str) -> Output {
        Machine::run(&self.nobody, script)
    }

    fn root_ok(&self, script: &str) -> String {
        let out = self.root(script);
        assert!(
            out.status.success(),
            "as root: {script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn nobody_ok(&self, script: &str) {
        let out = self.nobody(script);
        assert!(
            out.status.success(),
            "as nobody: {script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// What the attacker aimed at: a root-only file, and files that must never come to be.
pub struct Planted {
    target: String,
    never: Vec<String>,
    /// The planted-in directory's inode: it must never be used again.
    inode: String,
}

fn aim(m: &Machine, service: &str) -> Planted {
    let target = format!("/root/odysseus-lock-target-{service}");
    let never: Vec<String> = ["lock", "pid", "holder2"]
        .iter()
        .map(|k| format!("/etc/odysseus-planted-{service}.{k}"))
        .collect();
    m.root_ok(&format!(
        "printf 'untouched\\n' > {target} && chmod 0600 {target} && rm -f {}",
        never.join(" ")
    ));
    Planted {
        target,
        never,
        inode: String::new(),
    }
}

fn links(service: &str, p: &Planted) -> String {
    format!(
        "ln -s {t} {DIR}/{service}.holder && ln -s {l} {DIR}/{service}.lock && ln -s {q} {DIR}/{service}.pid",
        t = p.target,
        l = p.never[0],
        q = p.never[1],
    )
}

/// The directory as an odysseus before this fix left it (0777, not sticky, owned by
/// root, with a holder file of another service that anyone may write), and the
/// attacker's links in it.
pub fn plant_in_open_dir(m: &Machine, service: &str) -> Planted {
    let mut p = aim(m, service);
    m.root_ok(&format!(
        "rm -rf {DIR} {DIR}.open-* && mkdir -m 0777 {DIR} && (umask 0; printf 'someone\\n' > {DIR}/{service}-other.holder)"
    ));
    // A hidden foothold too: a scrub of `*` would miss it.
    m.nobody_ok(&format!("{} && mkdir {DIR}/.foothold", links(service, &p)));
    p.inode = m.root_ok(&format!("stat -c %i {DIR}")).trim().to_string();
    p
}

/// The directory in use is not the one the attacker planted in (whose descriptors they
/// may still hold), and the holder line shows on no command line while a deploy holds
/// the lock (`ps` as `nobody`).
pub fn assert_fresh_directory(m: &Machine, p: &Planted) {
    let now = m.root_ok(&format!("stat -c %i {DIR}"));
    assert_ne!(
        now.trim(),
        p.inode,
        "the directory planted in is still in use"
    );
}

/// The planted-in directory is still the one in place (nothing moved it yet).
pub fn assert_still_planted(m: &Machine, p: &Planted) {
    let now = m.root_ok(&format!("stat -c %i {DIR}"));
    assert_eq!(now.trim(), p.inode, "a read-only look moved the directory");
}

/// Runs the deploy `cmd` to its end; once its output shows `marker` (the lock is held by
/// then), `ps` as `nobody` must not show the holder line. The deploy must succeed.
pub fn deploy_with_holder_hidden(m: &Machine, cmd: Command, marker: &str) {
    let (mut child, lines) = crate::real::spawn_until(cmd, marker);
    assert_ps_hides(m, "state dir ");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the deploy ended before `ps` looked"
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(
        child.wait().unwrap().code(),
        Some(0),
        "deploy over the planted links: {rest:#?}"
    );
}

/// What `nobody` sees of every process's command line must not hold `secret` (a piece
/// of the holder line: "state dir ").
pub fn assert_ps_hides(m: &Machine, secret: &str) {
    let out = m.nobody("ps -eo args");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("sh"),
        "ps as nobody: {text}"
    );
    assert!(
        !text.contains(secret),
        "`ps` shows the holder to everyone:\n{text}"
    );
}

/// The attacker makes the directory before any odysseus ran (/run/lock is writable by
/// everyone), with the links in it.
pub fn squat(m: &Machine, service: &str) -> Planted {
    let p = aim(m, service);
    m.root_ok(&format!("rm -rf {DIR}"));
    m.nobody_ok(&format!("mkdir -m 0777 {DIR} && {}", links(service, &p)));
    p
}

pub fn clear(m: &Machine) {
    m.root_ok(&format!("rm -rf {DIR} {DIR}.open-*"));
}

/// The target is as it was, and nothing came to be outside odysseus's directory.
pub fn assert_nothing_happened(m: &Machine, p: &Planted) {
    let seen = m.root_ok(&format!(
        "stat -c '%U %a' {t}; cat {t}; for f in {n}; do [ -e \"$f\" ] && echo \"created $f\"; done; true",
        t = p.target,
        n = p.never.join(" ")
    ));
    assert_eq!(
        seen, "root 600\nuntouched\n",
        "the attacker's targets changed"
    );
}

/// The directory is the Docker group's alone, holds only plain files of deploy users
/// that nobody else may touch, and `nobody` can neither look in, nor take the lock, nor
/// read or forge the holder, nor plant anything.
pub fn assert_closed_to_others(m: &Machine, service: &str) {
    let dir = m.root_ok(&format!("stat -c '%a %G %F' {DIR}"));
    assert_eq!(dir.trim(), "2770 docker directory");
    let files = m.root_ok(&format!("for f in {DIR}/* {DIR}/.[!.]*; do [ -e \"$f\" ] || [ -L \"$f\" ] || continue; stat -c '%n %F %h %a %G' \"$f\"; done"));
    assert!(files.contains(&format!("{service}.holder")), "{files}");
    assert!(
        !files.contains("-other.holder"),
        "a file others could write stayed: {files}"
    );
    for line in files.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let tail = &cols[cols.len() - 3..];
        assert!(
            line.contains("regular") && tail == ["1", "660", "docker"],
            "not a plain file of the deploy group: {line}"
        );
    }
    for attempt in [
        format!("ls {DIR}"),
        format!("flock -n {DIR}/{service}.lock true"),
        format!("cat {DIR}/{service}.holder"),
        format!("printf 'forged\\n' > {DIR}/{service}.holder"),
        format!("ln -s /etc/passwd {DIR}/{service}.evil"),
    ] {
        let out = m.nobody(&attempt);
        assert!(!out.status.success(), "as nobody, `{attempt}` worked");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "`{attempt}`: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
