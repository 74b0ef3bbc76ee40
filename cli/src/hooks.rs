//! The project's hooks, as Kamal users write them: executables named after a hook
//! (`pre-deploy`, …) in `.odysseus/hooks/` or `.kamal/hooks/`, run on this machine with the
//! environment Kamal documents (`KAMAL_*`, and the same values as `ODYSSEUS_*`).
//!
//! Where they are looked for, first match wins per hook: `.odysseus/hooks/` beside
//! deploy.yml, `.kamal/hooks/` beside it, and, when deploy.yml sits in a `config/`
//! directory (Kamal's layout), `.kamal/hooks/` in that directory's parent. A hook runs in
//! the directory that holds its hooks folder. Its output goes to stderr (stdout stays
//! the JSON of `--json`) and is never journaled: it may hold secrets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::time::Instant;

use odysseus_engine::machine::{HookCall, HookExit, HookName};
use odysseus_engine::runtime::{Clock, HookRunner, SystemClock};

/// The hooks a project has, and what every run of them is told.
pub struct Hooks {
    found: BTreeMap<&'static str, Found>,
    /// `--skip-hooks`: even a hook the deployment's record names is not run.
    skip: bool,
    service: String,
    version: String,
    performer: String,
    /// `KAMAL_COMMAND`: `deploy`, or `rollback`.
    command: &'static str,
    /// For `KAMAL_RUNTIME`: seconds since this command started.
    since: Instant,
}

struct Found {
    path: PathBuf,
    /// The directory holding the hooks folder: where the hook runs.
    root: PathBuf,
}

impl Hooks {
    /// Finds the hooks of the project whose deploy.yml is `config_path`: in
    /// `hooks_path` (deploy.yml's, Kamal's key) alone when it is set. None when `skip`
    /// (`--skip-hooks`).
    pub fn discover(config_path: &Path, hooks_path: Option<&str>, skip: bool) -> Hooks {
        let mut found = BTreeMap::new();
        if !skip {
            let dir = config_path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            // Absolute: a hook runs in its project's directory, so a relative path to
            // it (from `-c config/deploy.yml`) would no longer lead to it.
            let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
            let dir = dir.as_path();
            // The project's root, as Kamal sees it: where `config/deploy.yml` lives in.
            let project = match dir.parent() {
                Some(parent) if dir.file_name().is_some_and(|n| n == "config") => parent,
                _ => dir,
            };
            let mut roots = vec![
                (dir.to_path_buf(), ".odysseus/hooks"),
                (dir.to_path_buf(), ".kamal/hooks"),
            ];
            if project != dir {
                roots.push((project.to_path_buf(), ".kamal/hooks"));
            }
            if let Some(folder) = hooks_path {
                roots = vec![(project.to_path_buf(), folder)];
            }
            for hook in HookName::ALL {
                for (root, folder) in &roots {
                    let path = root.join(folder).join(hook.as_str());
                    if path.is_file() {
                        found.insert(
                            hook.as_str(),
                            Found {
                                path,
                                root: root.clone(),
                            },
                        );
                        break;
                    }
                }
            }
        }
        Hooks {
            found,
            skip,
            service: String::new(),
            version: String::new(),
            performer: String::new(),
            command: "deploy",
            since: Instant::now(),
        }
    }

    /// The command hooks are told about (`KAMAL_COMMAND`).
    pub fn command(mut self, command: &'static str) -> Hooks {
        self.command = command;
        self
    }

    /// What the hooks are told about the deployment.
    pub fn describe(&mut self, service: &str, version: &str, performer: &str) {
        self.service = service.to_string();
        self.version = version.to_string();
        self.performer = performer.to_string();
    }

    pub fn has(&self, hook: HookName) -> bool {
        self.found.contains_key(hook.as_str())
    }

    /// The names of the hooks found, for the journal's `hooks-found`.
    pub fn names(&self) -> Vec<String> {
        self.found.keys().map(|k| k.to_string()).collect()
    }

    /// Runs `hook` for `hosts`. Only hooks the deployment's record names are asked for:
    /// one this checkout lacks is a failure (a resume from a tree without the project's
    /// hooks must not pass a gate silently), unless `--skip-hooks` said to run none.
    pub async fn run_named(
        &self,
        hook: HookName,
        hosts: &[String],
        deployment: Option<String>,
    ) -> HookExit {
        let Some(found) = self.found.get(hook.as_str()) else {
            return if self.skip {
                HookExit {
                    exit_code: Some(0),
                    reason: "not run: --skip-hooks".into(),
                    millis: 0,
                }
            } else {
                HookExit {
                    exit_code: None,
                    reason: format!(
                        "could not run: the deployment's record names a {hook} hook, but none is in .odysseus/hooks or .kamal/hooks here (run from the project's checkout, or pass --skip-hooks)"
                    ),
                    millis: 0,
                }
            };
        };
        let mut env: Vec<(&str, String)> = vec![
            ("RECORDED_AT", SystemClock.now().to_string()),
            ("PERFORMER", self.performer.clone()),
            ("SERVICE", self.service.clone()),
            ("VERSION", self.version.clone()),
            (
                "SERVICE_VERSION",
                format!("{}@{}", self.service, short(&self.version)),
            ),
            ("HOSTS", hosts.join(",")),
            ("COMMAND", self.command.into()),
        ];
        if hook == HookName::PostDeploy {
            env.push(("RUNTIME", self.since.elapsed().as_secs().to_string()));
        }
        if let Some(id) = deployment {
            env.push(("DEPLOYMENT", id));
        }
        use std::os::unix::fs::PermissionsExt;
        let executable = std::fs::metadata(&found.path)
            .map(|m| m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        if !executable {
            return HookExit {
                exit_code: None,
                reason: format!(
                    "could not run {}: it is not executable (chmod +x it)",
                    found.path.display()
                ),
                millis: 0,
            };
        }
        // The hook runs under a small shell that stays its parent: when odysseus dies
        // (even by SIGKILL) the kernel sends that shell SIGTERM (PR_SET_PDEATHSIG), and it
        // kills the whole group — the hook and whatever it started (a migration must not
        // run on while a resume starts it again).
        let mut command = tokio::process::Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(r#"trap 'kill -KILL 0' TERM HUP; "$0" "$@" & wait $!"#)
            .arg(&found.path)
            .current_dir(&found.root)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (name, value) in &env {
            command.env(format!("KAMAL_{name}"), value);
            command.env(format!("ODYSSEUS_{name}"), value);
        }
        // Its stdout joins our stderr: ours may be `--json`.
        if let Ok(err) = std::os::fd::AsFd::as_fd(&std::io::stderr()).try_clone_to_owned() {
            command.stdout(Stdio::from(err));
        }
        // Its own process group: a Ctrl-C at the terminal reaches odysseus, which records
        // the interruption and then ends the whole group (a hook killed by the terminal's
        // SIGINT first would look like a failed gate).
        command.process_group(0);
        // SAFETY: prctl is async-signal-safe and touches nothing of the parent's.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let t0 = Instant::now();
        let status = match command.spawn() {
            Ok(mut child) => {
                let mut group = GroupGuard(child.id());
                let status = child.wait().await;
                // Ended by itself: what it left running in the background is its own.
                group.0 = None;
                status
            }
            Err(e) => Err(e),
        };
        let millis = t0.elapsed().as_millis() as u64;
        match status {
            Ok(status) => match status.code() {
                Some(code) => HookExit {
                    exit_code: Some(code),
                    reason: String::new(),
                    millis,
                },
                None => HookExit {
                    exit_code: None,
                    reason: format!(
                        "killed by signal {}",
                        std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
                    ),
                    millis,
                },
            },
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => HookExit {
                exit_code: None,
                reason: format!(
                    "could not run {}: it is not executable (chmod +x it)",
                    found.path.display()
                ),
                millis,
            },
            Err(e) => HookExit {
                exit_code: None,
                reason: format!("could not run {}: {e}", found.path.display()),
                millis,
            },
        }
    }
}

/// Kills a hook's whole process group (its children too) when its run is abandoned: the
/// deploy was interrupted while the hook ran.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: a plain syscall on the group this run created.
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
            }
        }
    }
}

/// Kamal's abbreviated version: a 40-hex commit shortened to 7.
fn short(version: &str) -> &str {
    if version.len() == 40 && version.bytes().all(|b| b.is_ascii_hexdigit()) {
        &version[..7]
    } else {
        version
    }
}

impl HookRunner for Hooks {
    fn run<'a>(
        &'a self,
        call: &'a HookCall,
    ) -> Pin<Box<dyn std::future::Future<Output = HookExit> + 'a>> {
        Box::pin(self.run_named(call.hook, &call.hosts, Some(call.deployment.to_string())))
    }
}
