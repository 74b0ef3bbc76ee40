//! Helpers for tests against the real Docker engine and Caddy: the odysseus binary, a
//! deploy.yml per test, a bounded load generator, and queries of the engine.
//!
//! These tests need the test bed (`testbed/testbed.sh up`, which the README's test
//! command runs). Without a Docker engine they fail loudly: they never skip.

#![allow(dead_code)] // Shared by several test binaries; each uses part of it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Caddy's published HTTP port on this machine during the tests.
pub const HTTP_PORT: u16 = 18080;

/// The Caddy image the tests deploy with: a current release, as caddy:2-alpine is.
pub const CADDY_IMAGE: &str = "odysseus-testbed/caddy:2.11.7";

/// Removes this machine's odysseus-caddy when it runs another image than `image` (a
/// test of an older Caddy leaves one): odysseus keeps an existing Caddy as it is.
pub fn ensure_local_caddy_is(image: &str) {
    let running = docker(&["inspect", "-f", "{{.Image}}", "odysseus-caddy"]);
    let wanted = docker(&["image", "inspect", "-f", "{{.Id}}", image]);
    if !running.trim().is_empty() && running.trim() != wanted.trim() {
        docker(&["rm", "-f", "odysseus-caddy"]);
        docker(&[
            "volume",
            "rm",
            "-f",
            "odysseus-caddy-config",
            "odysseus-caddy-data",
        ]);
    }
}

/// How many config changes (each a Caddy reload) this machine's Caddy has been asked
/// for since it started: its admin API logs every request with its method.
pub fn caddy_config_changes() -> usize {
    let out = Command::new("docker")
        .args(["logs", "odysseus-caddy"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter(|l| l.contains("\"msg\":\"received request\""))
        .filter(|l| {
            ["POST", "PUT", "PATCH", "DELETE"]
                .iter()
                .any(|m| l.contains(&format!("\"method\":\"{m}\"")))
        })
        .count()
}

/// One request to this machine's Caddy admin API, as odysseus reaches it: through the
/// Docker engine, from inside the Caddy container (it listens on that loopback only).
pub fn caddy_admin(method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    caddy_admin_via(&["docker"], method, path, body)
}

/// The same through another Docker CLI invocation (e.g. `docker -H unix://…` for a server).
pub fn caddy_admin_via(
    docker_cmd: &[&str],
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), String> {
    use std::process::Stdio;
    let mut child = Command::new(docker_cmd[0])
        .args(&docker_cmd[1..])
        .args(["exec", "-i", "odysseus-caddy", "nc", "127.0.0.1", "2019"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:2019\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.stdout.is_empty() {
        return Err(format!(
            "no answer from Caddy's admin API: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let (status, body, _) = read_response(&mut std::io::Cursor::new(out.stdout))?;
    Ok((status, body))
}

/// Real-component tests share one Docker engine and one Caddy: run them one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn require_docker() {
    let ok = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "no Docker engine answers: run `bash testbed/testbed.sh up` (the README's test command does)");
    for image in [
        "odysseus-demo:v1",
        "odysseus-demo:v2",
        "odysseus-bad:latest",
        "odysseus-testbed/caddy:2.11.7",
        "odysseus-testbed/caddy:2.6",
    ] {
        let present = Command::new("docker")
            .args(["image", "inspect", image])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            present,
            "image {image} is missing: run `bash testbed/testbed.sh up`"
        );
    }
}

/// The built `odysseus` binary beside this test binary.
pub fn odysseus_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("odysseus");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p odysseus` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// A service of its own for one test: its deploy.yml, state dir and Host header.
pub struct App {
    pub service: String,
    pub dir: PathBuf,
    pub host_header: String,
}

impl App {
    pub fn new(service: &str, image: &str, extra: &str) -> App {
        let dir =
            std::env::temp_dir().join(format!("odysseus-it-{service}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let app = App {
            service: service.to_string(),
            dir,
            host_header: format!("{service}.test"),
        };
        app.write_config(image, extra);
        app.remove_containers();
        ensure_local_caddy_is(CADDY_IMAGE);
        app
    }

    pub fn write_config(&self, image: &str, extra: &str) {
        let yaml = format!(
            "service: {service}
image: {image}
servers:
  web:
    hosts: [local]
    deploy:
      drain_timeout: 10
      boot_timeout: 15
      stop_timeout: 10
proxy:
  app_port: 3000
  hosts: [{host}]
  ssl: false
  image: odysseus-testbed/caddy:2.11.7
  http_port: {HTTP_PORT}
  healthcheck:
    path: /health
    interval: 1
{extra}",
            service = self.service,
            host = self.host_header,
        );
        std::fs::write(self.config(), yaml).unwrap();
    }

    /// `odysseus replay --json` of the latest deployment.
    pub fn replay_json(&self) -> serde_json::Value {
        let out = Command::new(odysseus_bin())
            .args(["replay", "--json", "-c"])
            .arg(self.config())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("deploy.yml")
    }

    pub fn deploy_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(odysseus_bin());
        cmd.arg("deploy").arg("-c").arg(self.config()).args(args);
        cmd.env_remove("ODYSSEUS_STATE_DIR");
        cmd
    }

    pub fn deploy(&self, args: &[&str]) -> Output {
        self.deploy_cmd(args).output().unwrap()
    }

    /// Running containers of the service: (name, version).
    pub fn running(&self) -> Vec<(String, String)> {
        let out = docker(&[
            "ps",
            "--filter",
            &format!("label=odysseus.service={}", self.service),
            "--format",
            "{{.Names}} {{.Label \"odysseus.version\"}}",
        ]);
        let mut list: Vec<(String, String)> = out
            .lines()
            .filter_map(|l| {
                l.split_once(' ')
                    .map(|(n, v)| (n.to_string(), v.to_string()))
            })
            .collect();
        list.sort();
        list
    }

    /// All containers of the service, running or not.
    pub fn all_containers(&self) -> Vec<String> {
        docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=odysseus.service={}", self.service),
            "--format",
            "{{.Names}}",
        ])
        .lines()
        .map(str::to_string)
        .collect()
    }

    /// The dial addresses in the service's Caddy route.
    pub fn upstreams(&self) -> Vec<String> {
        let body = caddy_admin(
            "GET",
            &format!("/id/odysseus-proxy-{}/upstreams", self.service),
            "",
        )
        .map(|(_, b)| b)
        .unwrap_or_default();
        let mut dials: Vec<String> = body
            .split("\"dial\":\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .map(|dial| {
                match dial
                    .strip_prefix("{file.")
                    .and_then(|d| d.strip_suffix('}'))
                {
                    // A slot: the container is in the file Caddy reads at every request.
                    Some(path) => docker(&["exec", "odysseus-caddy", "cat", path])
                        .trim()
                        .to_string(),
                    None => dial.to_string(),
                }
            })
            .collect();
        dials.sort();
        dials.dedup();
        dials
    }

    pub fn get(&self, path: &str) -> Result<(u16, String), String> {
        http_get_raw(&format!("127.0.0.1:{HTTP_PORT}"), path, &self.host_header)
    }

    pub fn remove_containers(&self) {
        let names = self.all_containers();
        if !names.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(names.iter().map(String::as_str));
            docker(&args);
        }
        // An unfinished deployment's mark, left by a test that stopped half-way.
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f"])
            .arg(format!("odysseus-deployment-{}", self.service))
            .output();
        // This machine's copies of the service's journal, from earlier runs (a later
        // state dir would read them).
        let _ = std::fs::remove_dir_all(format!("/var/lib/odysseus/journal/{}", self.service));
        // Its maintenance page, left by a run that stopped half-way.
        docker(&[
            "exec",
            "odysseus-caddy",
            "rm",
            "-rf",
            &format!("/config/odysseus/maintenance/{}", self.service),
        ]);
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.remove_containers();
        // Leave no route behind for the next test to find stale.
        let _ = caddy_admin(
            "DELETE",
            &format!("/id/odysseus-route-{}", self.service),
            "",
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One HTTP/1.1 GET with `Connection: close`; the status and body, or why it failed.
pub fn http_get_raw(addr: &str, path: &str, host: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(20))).ok();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            format!(
                "no status line in {:?}",
                text.chars().take(80).collect::<String>()
            )
        })?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Chunked bodies carry the size line; the version text is still inside.
    Ok((status, body))
}

/// What the load generator saw.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub ok: u64,
    pub non_2xx: Vec<u16>,
    pub errors: Vec<String>,
    pub versions: Vec<String>,
    pub latencies_ms: Vec<u64>,
}

impl LoadReport {
    pub fn failures(&self) -> usize {
        self.non_2xx.len() + self.errors.len()
    }
    pub fn saw(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }
}

/// A bounded load generator: `workers` threads send GET / through Caddy until stopped,
/// at most `max_requests` in all and never past `max_time`. Aimed only at loopback.
pub struct Load {
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<LoadReport>>,
}

impl Load {
    pub fn start(host_header: &str, workers: usize, max_requests: u64, max_time: Duration) -> Load {
        Load::start_at(
            &format!("127.0.0.1:{HTTP_PORT}"),
            host_header,
            workers,
            max_requests,
            max_time,
        )
    }

    /// The same, aimed at `addr` (loopback or a test-bed server on 198.51.100.0/24).
    pub fn start_at(
        addr: &str,
        host_header: &str,
        workers: usize,
        max_requests: u64,
        max_time: Duration,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let per_worker = max_requests / workers as u64;
        let handles = (0..workers)
            .map(|_| {
                let stop = stop.clone();
                let host = host_header.to_string();
                let addr = addr.to_string();
                std::thread::spawn(move || {
                    let deadline = Instant::now() + max_time;
                    let mut report = LoadReport::default();
                    let mut sent = 0;
                    while !stop.load(Ordering::Relaxed)
                        && sent < per_worker
                        && Instant::now() < deadline
                    {
                        sent += 1;
                        let t0 = Instant::now();
                        match http_get_raw(&addr, "/", &host) {
                            Ok((status, body)) if (200..300).contains(&status) => {
                                report.ok += 1;
                                let v = body
                                    .lines()
                                    .find(|l| l.starts_with('v'))
                                    .unwrap_or("")
                                    .trim()
                                    .to_string();
                                if !report.versions.contains(&v) {
                                    report.versions.push(v);
                                }
                            }
                            Ok((status, _)) => report.non_2xx.push(status),
                            Err(e) => report.errors.push(e),
                        }
                        report.latencies_ms.push(t0.elapsed().as_millis() as u64);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    report
                })
            })
            .collect();
        Load { stop, handles }
    }

    pub fn finish(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = LoadReport::default();
        for h in self.handles {
            let r = h.join().unwrap();
            total.ok += r.ok;
            total.non_2xx.extend(r.non_2xx);
            total.errors.extend(r.errors);
            for v in r.versions {
                if !total.versions.contains(&v) {
                    total.versions.push(v);
                }
            }
            total.latencies_ms.extend(r.latencies_ms);
        }
        total
    }
}

/// The progress lines of a spawned deploy still to be read.
pub type ProgressLines = std::io::Lines<std::io::BufReader<std::process::ChildStderr>>;

/// Spawns `cmd` with its progress (stderr) piped and reads it until a line contains
/// `marker`: the instant a test wants to act at.
pub fn spawn_until(mut cmd: Command, marker: &str) -> (std::process::Child, ProgressLines) {
    use std::io::BufRead;
    let mut child = cmd
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains(marker) {
            break;
        }
    }
    (child, lines)
}

/// A request to the demo app's slow endpoint through Caddy at `addr`, answered after
/// `secs` seconds: it keeps a drain busy. Started 300 ms before returning.
pub fn slow_request(
    addr: String,
    host: String,
    secs: u32,
) -> std::thread::JoinHandle<Result<(u16, String), String>> {
    let handle =
        std::thread::spawn(move || http_get_raw(&addr, &format!("/cgi-bin/slow?s={secs}"), &host));
    std::thread::sleep(Duration::from_millis(300));
    handle
}

/// Fails if any file under `dir` (a state dir: the journal, keys) contains `secret`.
pub fn assert_no_file_holds(dir: &std::path::Path, secret: &str) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{} holds a secret",
                    path.display()
                );
            }
        }
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn assert_exit(o: &Output, code: i32, what: &str) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        stderr(o)
    );
}

/// Runs a command in a thread and hands back its output: two deploys at once.
pub trait SpawnOutput {
    fn spawn_output(self) -> std::thread::JoinHandle<Output>;
}

impl SpawnOutput for Command {
    fn spawn_output(mut self) -> std::thread::JoinHandle<Output> {
        std::thread::spawn(move || self.output().unwrap())
    }
}

/// The kinds of client a mixed load runs side by side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// One request per connection (`Connection: close`).
    Fresh,
    /// One connection reused, the next request sent as soon as a response is read; a
    /// new connection only after the server closed one (said so, or after a failure).
    KeepAlive,
    /// One request per connection to the demo app's 2 s endpoint.
    Long,
}

/// What one kind of client saw.
#[derive(Debug, Default, Clone)]
pub struct KindReport {
    pub ok: u64,
    pub non_2xx: Vec<u16>,
    pub errors: Vec<String>,
    /// Connections the server closed after a response that said `Connection: close`
    /// (not failures: the client is told before it sends again).
    pub announced_closes: u64,
}

impl KindReport {
    pub fn failures(&self) -> usize {
        self.non_2xx.len() + self.errors.len()
    }
    fn absorb(&mut self, other: KindReport) {
        self.ok += other.ok;
        self.non_2xx.extend(other.non_2xx);
        self.errors.extend(other.errors);
        self.announced_closes += other.announced_closes;
    }
}

#[derive(Debug, Default, Clone)]
pub struct MixedReport {
    pub fresh: KindReport,
    pub keepalive: KindReport,
    pub long: KindReport,
    pub versions: Vec<String>,
}

impl MixedReport {
    /// Fails unless every kind got requests through and none failed.
    pub fn assert_clean(&self, what: &str, min_each: u64) {
        for (kind, r) in [
            ("fresh", &self.fresh),
            ("keep-alive", &self.keepalive),
            ("long", &self.long),
        ] {
            assert_eq!(
                r.failures(),
                0,
                "{what}: {kind} clients saw {} failures (ok {}): non-2xx {:?}, errors {:?}",
                r.failures(),
                r.ok,
                &r.non_2xx[..r.non_2xx.len().min(5)],
                &r.errors[..r.errors.len().min(5)]
            );
            assert!(
                r.ok >= min_each,
                "{what}: only {} {kind} requests got through",
                r.ok
            );
        }
    }
}

/// A load of the three kinds of client at once, each counted on its own: `workers`
/// threads per kind, until stopped or `max_time`. Aimed only at loopback or the test LAN.
/// One client thread: what it saw, and the versions it was answered by.
type ClientThread = std::thread::JoinHandle<(KindReport, Vec<String>)>;

pub struct MixedLoad {
    stop: Arc<AtomicBool>,
    handles: Vec<(ClientKind, ClientThread)>,
}

impl MixedLoad {
    pub fn start(addr: &str, host_header: &str, workers: usize, max_time: Duration) -> MixedLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for kind in [ClientKind::Fresh, ClientKind::KeepAlive, ClientKind::Long] {
            for _ in 0..workers {
                let stop = stop.clone();
                let host = host_header.to_string();
                let addr = addr.to_string();
                handles.push((
                    kind,
                    std::thread::spawn(move || client_loop(kind, &addr, &host, &stop, max_time)),
                ));
            }
        }
        MixedLoad { stop, handles }
    }

    pub fn finish(self) -> MixedReport {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = MixedReport::default();
        for (kind, h) in self.handles {
            let (r, versions) = h.join().unwrap();
            match kind {
                ClientKind::Fresh => total.fresh.absorb(r),
                ClientKind::KeepAlive => total.keepalive.absorb(r),
                ClientKind::Long => total.long.absorb(r),
            }
            for v in versions {
                if !total.versions.contains(&v) {
                    total.versions.push(v);
                }
            }
        }
        total
    }
}

fn client_loop(
    kind: ClientKind,
    addr: &str,
    host: &str,
    stop: &AtomicBool,
    max_time: Duration,
) -> (KindReport, Vec<String>) {
    use std::io::BufReader;
    let deadline = Instant::now() + max_time;
    let mut report = KindReport::default();
    let mut versions: Vec<String> = Vec::new();
    let mut conn: Option<(TcpStream, BufReader<TcpStream>)> = None;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let (path, close) = match kind {
            ClientKind::Fresh => ("/", true),
            ClientKind::KeepAlive => ("/", false),
            ClientKind::Long => ("/cgi-bin/slow?s=2", true),
        };
        if conn.is_none() {
            match TcpStream::connect(addr) {
                Ok(s) => {
                    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
                    s.set_nodelay(true).ok();
                    let reader = BufReader::new(s.try_clone().unwrap());
                    conn = Some((s, reader));
                }
                Err(e) => {
                    report.errors.push(format!("connect: {e}"));
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            }
        }
        let (stream, reader) = conn.as_mut().unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\n{}\r\n",
            if close { "Connection: close\r\n" } else { "" }
        );
        let result = stream
            .write_all(request.as_bytes())
            .map_err(|e| format!("write: {e}"))
            .and_then(|_| read_response(reader));
        match result {
            Ok((status, body, server_closes)) => {
                if (200..300).contains(&status) {
                    report.ok += 1;
                    let v = body
                        .lines()
                        .find(|l| l.starts_with('v'))
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    if !v.is_empty() && !versions.contains(&v) {
                        versions.push(v);
                    }
                } else {
                    report.non_2xx.push(status);
                }
                if close || server_closes {
                    if !close {
                        report.announced_closes += 1;
                    }
                    conn = None;
                }
            }
            Err(e) => {
                report.errors.push(e);
                conn = None;
            }
        }
        if kind == ClientKind::Fresh {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    (report, versions)
}

/// One HTTP/1.1 response: status, body, and whether the server said it closes.
fn read_response(reader: &mut impl std::io::BufRead) -> Result<(u16, String, bool), String> {
    let mut line = String::new();
    let n = reader
        .read_line(&mut line)
        .map_err(|e| format!("read: {e}"))?;
    if n == 0 {
        return Err("connection closed without response".into());
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let (mut length, mut chunked, mut closes) = (None, false, false);
    loop {
        let mut h = String::new();
        reader
            .read_line(&mut h)
            .map_err(|e| format!("read headers: {e}"))?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (name, value) = h.split_once(':').unwrap_or((h, ""));
        let (name, value) = (
            name.trim().to_ascii_lowercase(),
            value.trim().to_ascii_lowercase(),
        );
        match name.as_str() {
            "content-length" => length = value.parse::<usize>().ok(),
            "transfer-encoding" => chunked = value.contains("chunked"),
            "connection" => closes = value == "close",
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader
                .read_line(&mut size)
                .map_err(|e| format!("read chunk: {e}"))?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| format!("bad chunk size {size:?}"))?;
            let mut chunk = vec![0; n + 2];
            reader
                .read_exact(&mut chunk)
                .map_err(|e| format!("read chunk: {e}"))?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        reader
            .read_exact(&mut body)
            .map_err(|e| format!("read body: {e}"))?;
    } else {
        reader
            .read_to_end(&mut body)
            .map_err(|e| format!("read body: {e}"))?;
        closes = true;
    }
    Ok((status, String::from_utf8_lossy(&body).into_owned(), closes))
}

/// `git` in `dir` as a test user; panics with git's words when it fails. Its stdout, trimmed.
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
