//! `odysseus doctor`: read-only checks of one host, each a verdict and a sentence that
//! says what to fix. Nothing here changes a host: every probe is a read (an engine
//! query, `df`, `date`, the kernel's TCP table, the lock's probe script).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use odysseus_engine::runtime::ExecError;
use serde::Serialize;

use crate::docker::caddy::CADDY_CONTAINER;
use crate::docker::spec::ServiceSpec;
use crate::docker::{local_socket, DockerExecutor};
use crate::host_lock::script::shell_quote;
use crate::ssh::{exec as ssh_exec, Connection, Session, SshSettings, SshTarget};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    /// Works, but deserves a look (a lock held, little disk, a clock a little off).
    Warn,
    /// A deploy to this host would fail.
    Fail,
    /// Not checked: an earlier check it depends on failed.
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

fn check(check: &'static str, verdict: Verdict, detail: impl Into<String>) -> Check {
    Check {
        check,
        verdict,
        detail: detail.into(),
    }
}

/// Below this much free space where the engine keeps images, a pull or a build can fail.
const DISK_FAIL_BYTES: u64 = 1 << 30;
const DISK_WARN_BYTES: u64 = 5 << 30;
/// A clock this far off breaks certificate checks and misdates the journal's records.
const SKEW_WARN: Duration = Duration::from_secs(2);
const SKEW_FAIL: Duration = Duration::from_secs(60);
const PROBE: Duration = Duration::from_secs(10);

/// The checks of `host`, in order; later ones are skipped when what they need failed.
pub async fn examine(
    spec: &ServiceSpec,
    host: &str,
    ssh: &SshSettings,
    default_port: u16,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let names = [
        "docker access",
        "docker engine",
        "disk",
        "lock",
        "caddy",
        "clock",
    ];
    // How commands run on the host: over an SSH session, or here.
    let session = if host == "local" {
        None
    } else {
        let target = match SshTarget::parse(host, default_port) {
            Ok(t) => t,
            Err(e) => {
                checks.push(check("ssh", Verdict::Fail, e.to_string()));
                return skip_rest(checks, &names);
            }
        };
        let login = format!("{}@{}:{}", ssh.user, target.host, target.port);
        match Connection::open(target, ssh.clone()).await {
            Ok(conn) => match conn.session().await {
                Ok(session) => {
                    checks.push(check(
                        "ssh",
                        Verdict::Ok,
                        format!("logged in as {login}; host key matches known_hosts"),
                    ));
                    Some(session)
                }
                Err(e) => {
                    checks.push(check("ssh", Verdict::Fail, e.to_string()));
                    return skip_rest(checks, &names);
                }
            },
            Err(e) => {
                checks.push(check("ssh", Verdict::Fail, e.to_string()));
                return skip_rest(checks, &names);
            }
        }
    };
    let socket = match &session {
        Some(_) => ssh.docker_socket.clone(),
        None => match local_socket() {
            Ok(s) => s,
            Err(e) => {
                checks.push(check("docker access", Verdict::Fail, e.to_string()));
                return skip_rest(checks, &names[1..]);
            }
        },
    };
    let access = socket_access(session.as_deref(), &socket).await;
    let usable = access.verdict == Verdict::Ok;
    checks.push(access);
    if !usable {
        return skip_rest(checks, &names[1..]);
    }
    let executor = match DockerExecutor::connect(
        spec.clone(),
        std::slice::from_ref(&host.to_string()),
        ssh,
        default_port,
    )
    .await
    {
        Ok(e) => e,
        Err(e) => {
            checks.push(check("docker engine", Verdict::Fail, e.to_string()));
            return skip_rest(checks, &names[2..]);
        }
    };
    let Ok(h) = executor.host(host) else {
        checks.push(check("docker engine", Verdict::Fail, "not connected"));
        return skip_rest(checks, &names[2..]);
    };
    let root_dir = match h.engine.docker().version().await {
        Ok(v) => {
            let api = v.api_version.unwrap_or_default();
            let old = api_older_than(&api, (1, 41));
            checks.push(check(
                "docker engine",
                if old { Verdict::Warn } else { Verdict::Ok },
                format!(
                    "Docker {} (API {api}){}",
                    v.version.unwrap_or_default(),
                    if old {
                        "; odysseus is tested with API 1.41 (Docker 20.10) and later"
                    } else {
                        ""
                    }
                ),
            ));
            h.engine
                .docker()
                .info()
                .await
                .ok()
                .and_then(|i| i.docker_root_dir)
        }
        Err(e) => {
            checks.push(check(
                "docker engine",
                Verdict::Fail,
                format!("the engine does not answer: {e}"),
            ));
            return skip_rest(checks, &names[2..]);
        }
    };
    checks.push(
        disk(
            session.as_deref(),
            root_dir.as_deref().unwrap_or("/var/lib/docker"),
        )
        .await,
    );
    checks.push(match executor.lock_holder(host, &spec.service).await {
        Ok(None) => check(
            "lock",
            Verdict::Ok,
            format!("the lock of {} is free", spec.service),
        ),
        Ok(Some(holder)) => check(
            "lock",
            Verdict::Warn,
            format!("held by {holder} (a deploy is running, or `odysseus lock status` says more)"),
        ),
        Err(e) => check("lock", Verdict::Fail, e.to_string()),
    });
    checks.push(caddy(&executor, host, session.as_deref()).await);
    checks.push(clock(session.as_deref()).await);
    checks
}

fn skip_rest(mut checks: Vec<Check>, names: &[&'static str]) -> Vec<Check> {
    for name in names {
        checks.push(check(name, Verdict::Skipped, "needs the checks above"));
    }
    checks
}

fn api_older_than(api: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = api.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found < (major, minor)
}

/// Runs a read-only shell command on the host (over SSH, or here).
async fn run(session: Option<&Session>, command: &str) -> Result<(u32, String), ExecError> {
    match session {
        Some(s) => ssh_exec(s, command, PROBE)
            .await
            .map(|(code, out)| (code, String::from_utf8_lossy(&out).into_owned())),
        None => tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .output()
            .await
            .map(|o| {
                (
                    o.status.code().unwrap_or(255) as u32,
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                )
            })
            .map_err(|e| ExecError::Retryable(format!("running `{command}`: {e}"))),
    }
}

/// Whether the deploy user may use the engine's socket: it exists, and they can read
/// and write it (root, or the socket's group, usually `docker`).
async fn socket_access(session: Option<&Session>, socket: &str) -> Check {
    let q = shell_quote(socket);
    let probe = format!(
        "if [ ! -S {q} ]; then echo absent; elif [ -r {q} ] && [ -w {q} ]; then echo usable; else echo denied; fi; id -un"
    );
    match run(session, &probe).await {
        Ok((_, out)) => {
            let mut lines = out.lines();
            let state = lines.next().unwrap_or("").trim().to_string();
            let user = lines.next().unwrap_or("?").trim().to_string();
            match state.as_str() {
                "usable" => check("docker access", Verdict::Ok, format!("{user} can use {socket}")),
                "absent" => check(
                    "docker access",
                    Verdict::Fail,
                    format!("no socket at {socket}: is dockerd running there, and is that its socket (ssh.docker_socket)?"),
                ),
                _ => check(
                    "docker access",
                    Verdict::Fail,
                    format!("{user} may not use {socket}: add {user} to the socket's group (usually `docker`) or deploy as root"),
                ),
            }
        }
        Err(e) => check("docker access", Verdict::Fail, e.to_string()),
    }
}

async fn disk(session: Option<&Session>, root: &str) -> Check {
    let probe = format!("df -Pk {} | tail -1", shell_quote(root));
    match run(session, &probe).await {
        Ok((0, out)) => {
            // Filesystem 1024-blocks Used Available Capacity Mounted-on
            let available = out
                .split_whitespace()
                .nth(3)
                .and_then(|k| k.parse::<u64>().ok())
                .map(|k| k * 1024);
            match available {
                Some(free) => {
                    let verdict = if free < DISK_FAIL_BYTES {
                        Verdict::Fail
                    } else if free < DISK_WARN_BYTES {
                        Verdict::Warn
                    } else {
                        Verdict::Ok
                    };
                    check(
                        "disk",
                        verdict,
                        format!("{} free under {root}", human_bytes(free)),
                    )
                }
                None => check(
                    "disk",
                    Verdict::Warn,
                    format!("cannot read df's answer for {root}: {}", out.trim()),
                ),
            }
        }
        Ok((code, out)) => check(
            "disk",
            Verdict::Warn,
            format!("df {root} failed (exit {code}): {}", out.trim()),
        ),
        Err(e) => check("disk", Verdict::Warn, e.to_string()),
    }
}

fn human_bytes(b: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    format!("{:.1} GiB", b as f64 / GIB)
}

/// Caddy: running, publishing the configured ports, its admin API answering. When it is
/// not there yet, whether the ports it will need are free.
async fn caddy(executor: &DockerExecutor, host: &str, session: Option<&Session>) -> Check {
    let Some(proxy) = &executor.spec().proxy else {
        return check("caddy", Verdict::Ok, "no proxy in deploy.yml: not needed");
    };
    let Ok(h) = executor.host(host) else {
        return check("caddy", Verdict::Fail, "not connected");
    };
    let wanted = [(80u16, proxy.http_port), (443u16, proxy.https_port)];
    match h.engine.inspect(CADDY_CONTAINER).await {
        Ok(Some(c)) if c.running => {
            let missing: Vec<String> = wanted
                .iter()
                .filter(|w| !c.published.contains(w))
                .map(|(inside, outside)| format!("{outside}→{inside}"))
                .collect();
            if !missing.is_empty() {
                return check(
                    "caddy",
                    Verdict::Fail,
                    format!(
                        "{CADDY_CONTAINER} does not publish {} as deploy.yml's proxy asks (it was made for other ports: remove it and the next deploy makes it again)",
                        missing.join(", ")
                    ),
                );
            }
            match h.admin.check_ready().await {
                Ok(true) => check(
                    "caddy",
                    Verdict::Ok,
                    format!("{CADDY_CONTAINER} runs {} on ports {} and {}; its admin API answers", c.image, proxy.http_port, proxy.https_port),
                ),
                Ok(false) => check("caddy", Verdict::Fail, format!("{CADDY_CONTAINER} runs but its admin API does not answer")),
                Err(e) => check("caddy", Verdict::Fail, e.to_string()),
            }
        }
        Ok(Some(_)) => check(
            "caddy",
            Verdict::Fail,
            format!("{CADDY_CONTAINER} exists but is not running: its routes serve nothing (`docker start {CADDY_CONTAINER}` on the host)"),
        ),
        Ok(None) => {
            let taken = match run(session, "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null").await {
                Ok((_, tables)) => listening_ports(&tables),
                Err(_) => Vec::new(),
            };
            let busy: Vec<String> = wanted
                .iter()
                .filter(|(_, outside)| taken.contains(outside))
                .map(|(_, outside)| outside.to_string())
                .collect();
            if busy.is_empty() {
                check("caddy", Verdict::Ok, format!("not there yet: the first deploy starts it on ports {} and {}, which are free", proxy.http_port, proxy.https_port))
            } else {
                check(
                    "caddy",
                    Verdict::Fail,
                    format!("not there yet, and port {} is taken by another program on the host: Caddy could not start", busy.join(" and ")),
                )
            }
        }
        Err(e) => check("caddy", Verdict::Fail, e.to_string()),
    }
}

/// Ports in LISTEN state (st 0A) in /proc/net/tcp{,6} tables.
fn listening_ports(tables: &str) -> Vec<u16> {
    tables
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) != Some(&"0A") {
                return None;
            }
            let port = fields.get(1)?.rsplit(':').next()?;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

/// The host's clock against this machine's, from `date` halfway through the round trip.
async fn clock(session: Option<&Session>) -> Check {
    let Some(session) = session else {
        return check("clock", Verdict::Ok, "this machine's own clock");
    };
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    };
    let sent = now();
    let answer = run(Some(session), "date +%s.%N").await;
    let back = now();
    let Ok((0, out)) = answer else {
        return check(
            "clock",
            Verdict::Warn,
            "cannot read the host's clock (`date`)",
        );
    };
    let Ok(theirs) = out.trim().parse::<f64>() else {
        return check(
            "clock",
            Verdict::Warn,
            format!("`date +%s.%N` said {}", out.trim()),
        );
    };
    let ours = (sent.as_secs_f64() + back.as_secs_f64()) / 2.0;
    let skew = theirs - ours;
    let margin = (back.as_secs_f64() - sent.as_secs_f64()) / 2.0;
    let off = Duration::from_secs_f64(skew.abs());
    let verdict = if off > SKEW_FAIL {
        Verdict::Fail
    } else if off > SKEW_WARN {
        Verdict::Warn
    } else {
        Verdict::Ok
    };
    check(
        "clock",
        verdict,
        format!(
            "{} this machine's by {:.3} s (±{:.3} s){}",
            if skew >= 0.0 { "ahead of" } else { "behind" },
            skew.abs(),
            margin,
            if verdict == Verdict::Ok {
                ""
            } else {
                ": certificates and the journal's times need clocks in step (run NTP)"
            }
        ),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn listening_ports_are_read_from_the_kernel_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0";
        assert_eq!(super::listening_ports(table), vec![80, 443]);
    }

    #[test]
    fn api_versions_compare_as_numbers() {
        assert!(super::api_older_than("1.40", (1, 41)));
        assert!(!super::api_older_than("1.41", (1, 41)));
        assert!(!super::api_older_than("1.100", (1, 41)));
    }
}
