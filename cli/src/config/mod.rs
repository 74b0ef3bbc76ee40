//! Loading and validating deploy.yml. Every problem is reported at once, each with the
//! file and, where the parser knows it, the line and column.

mod locate;
mod raw;
mod secrets_file;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use odysseus_engine::machine::{FailurePolicy, RoleKind, Timeouts};
use odysseus_executors::docker::spec::{
    CmdCheck, DependencySpec, ExpectStatus, HttpCheck, ProxySpec, RegistryAuth, Resources,
    RoleSpec, ServiceSpec,
};
use odysseus_executors::ssh::SshSettings;

use raw::{RawConfig, Scalar, StringOrList};

/// A validated deploy.yml.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub service: String,
    /// Repository, without a tag.
    pub image: String,
    /// A tag written in `image:` itself, used when `--image` is not given.
    pub default_tag: Option<String>,
    pub roles: Vec<Role>,
    pub spec: ServiceSpec,
    pub batch_size: BatchSize,
    pub on_failure: FailurePolicy,
    /// Versions each host keeps (containers and images) after a completed deployment.
    pub retain_versions: u32,
    /// How remote hosts are reached.
    pub ssh: SshSettings,
    pub ssh_port: u16,
    /// A digest of the file's bytes (secret values are never in the file).
    pub digest: String,
    /// Keys present in the file that this version accepts but does not act on yet.
    pub not_yet_supported: Vec<&'static str>,
    /// Valid but probably not what was meant; shown by `validate` and `deploy`.
    pub warnings: Vec<String>,
    /// The `env.secret` names (their values are in `spec.env`): the journal keeps the
    /// names and a keyed digest of the values (`provenance`), never the values.
    pub secret_names: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub kind: RoleKind,
    pub hosts: Vec<String>,
    pub timeouts: Timeouts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    Hosts(u32),
    Percent(u32),
}

impl BatchSize {
    pub fn hosts(self, total: usize) -> u32 {
        match self {
            BatchSize::Hosts(n) => n.max(1),
            BatchSize::Percent(p) => ((total as u64 * u64::from(p)).div_ceil(100) as u32).max(1),
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug)]
pub struct ConfigErrors {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{} problem{} in the config:",
            n,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// The closest known key to a mistyped one, when it is close enough to be a typo.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push(
                    (prev[j] + usize::from(ca != *cb))
                        .min(prev[j + 1] + 1)
                        .min(cur[j] + 1),
                );
            }
            prev = cur;
        }
        prev[b.len()]
    }
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| c)
}

/// Turns a parser error into `file:line:column: message`, adding "did you mean …?" for
/// an unknown key.
fn parse_problem(path: &Path, e: &serde_saphyr::Error) -> String {
    let message = e.without_snippet().to_string();
    let mut message = message.lines().next().unwrap_or("").to_string();
    // The parser's words, said for people; its own " at line L, column C" is redundant.
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    for (parser, person) in [
        (
            "expected sequence start",
            "expected a list here ([a, b] or one `- item` per line)",
        ),
        (
            "expected mapping start",
            "expected a mapping here (`key: value` lines)",
        ),
        (
            ", set DuplicateKeyPolicy in Options if acceptable",
            " (each key may appear once)",
        ),
    ] {
        message = message.replace(parser, person);
    }
    let location = e
        .location()
        .map(|l| format!(":{}:{}", l.line(), l.column()))
        .unwrap_or_default();
    let mut out = format!("{}{location}: {message}", path.display());
    if let Some(rest) = message.split("unknown field `").nth(1) {
        let unknown = rest.split('`').next().unwrap_or("");
        let expected: Vec<&str> = message
            .split("expected ")
            .nth(1)
            .unwrap_or("")
            .split(['`', ',', ' '])
            .filter(|w| !w.is_empty() && *w != "one" && *w != "of" && *w != "or")
            .collect();
        if let Some(suggestion) = closest(unknown, &expected) {
            out.push_str(&format!(" (did you mean `{suggestion}`?)"));
        }
    }
    out
}

/// Top-level `x-…` keys are extensions for the user's own tooling: they are blanked out
/// (line for line, so every other error keeps its line number) before the strict parse.
fn blank_extension_keys(text: &str) -> String {
    let mut skipping = false;
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let top_level = line
            .chars()
            .next()
            .is_some_and(|c| !c.is_whitespace() && c != '#');
        if top_level {
            skipping = line.starts_with("x-") && line.contains(':');
        }
        if !skipping {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `4g`, `512m`, `1024k`, `1073741824` → bytes.
fn parse_bytes(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (digits, unit) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let value: f64 = digits.trim().parse().ok()?;
    let factor = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = value * factor;
    (bytes >= 1.0 && bytes < i64::MAX as f64).then_some(bytes as i64)
}

fn parse_expect(s: &str) -> Option<ExpectStatus> {
    let s = s.trim();
    if let Some(class) = s
        .strip_suffix("xx")
        .and_then(|d| d.parse::<u8>().ok())
        .filter(|d| (1..=5).contains(d))
    {
        return Some(ExpectStatus::Class(class));
    }
    s.parse::<u16>()
        .ok()
        .filter(|c| (100..600).contains(c))
        .map(ExpectStatus::Exact)
}

/// Loads deploy.yml, resolving `env.secret` names from `secrets` (the process
/// environment, in practice).
pub fn load(path: &Path, secrets: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let bytes = std::fs::read(path).map_err(|e| ConfigErrors {
        problems: vec![format!("{}: cannot read: {e}", path.display())],
    })?;
    parse(path, &bytes, secrets)
}

/// The fuzz target's entry point: any bytes, never a panic. Every secret resolves (to an
/// empty value), so nothing beside the input is read.
pub fn fuzz_parse(data: &[u8]) {
    let _ = parse(Path::new("fuzz/deploy.yml"), data, &|_| Some(String::new()));
}

/// Parses and checks the bytes of a deploy.yml; `path` names it in messages and anchors
/// relative paths (keys, known_hosts, secrets_file). Never panics, whatever the bytes.
pub fn parse(
    path: &Path,
    bytes: &[u8],
    secrets: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let shown = path.display().to_string();
    let one = |p: String| ConfigErrors { problems: vec![p] };
    let text =
        String::from_utf8(bytes.to_vec()).map_err(|_| one(format!("{shown}: not UTF-8 text")))?;
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(one(format!("{shown}: the file is empty; a deploy.yml needs at least `service`, `image` and `servers`")));
    }
    let raw: RawConfig = serde_saphyr::from_str(&blank_extension_keys(&text))
        .map_err(|e| one(parse_problem(path, &e)))?;
    validate(path, raw, bytes, secrets)
}

/// `5432`, `5433:5432`, `127.0.0.1:5433:5432` → (container port, host address, host port).
fn parse_port(s: &str) -> Option<(u16, String, u16)> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p > 0);
    match parts.as_slice() {
        [c] => Some((port(c)?, "0.0.0.0".into(), port(c)?)),
        [h, c] => Some((port(c)?, "0.0.0.0".into(), port(h)?)),
        [a, h, c] if !a.is_empty() => Some((port(c)?, a.to_string(), port(h)?)),
        _ => None,
    }
}

/// A named volume (no path) is namespaced by the service; paths are binds as written.
fn namespace_volumes(service: &str, volumes: Vec<String>) -> Vec<String> {
    volumes
        .into_iter()
        .map(|v| match v.split_once(':') {
            Some((source, rest))
                if !source.starts_with('/')
                    && !source.starts_with('.')
                    && !source.starts_with('~') =>
            {
                format!("{service}-{source}:{rest}")
            }
            _ => v,
        })
        .collect()
}

/// `file: key: message` → `file:line: key: message`, when the key is in the file.
fn with_line(shown: &str, lines: &locate::KeyLines, problem: String) -> String {
    let Some(rest) = problem.strip_prefix(&format!("{shown}: ")) else {
        return problem;
    };
    let Some((key, _)) = rest.split_once(": ") else {
        return problem;
    };
    match lines.line(key) {
        Some(line) => format!("{shown}:{line}: {rest}"),
        None => problem,
    }
}

fn validate(
    path: &Path,
    raw: RawConfig,
    bytes: &[u8],
    secrets: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let shown = path.display().to_string();
    let mut problems: Vec<String> = Vec::new();
    fn push(problems: &mut Vec<String>, shown: &str, key: &str, msg: String) {
        problems.push(format!("{shown}: {key}: {msg}"));
    }

    let service = raw.service.clone().unwrap_or_default();
    if raw.service.is_none() {
        push(
            &mut problems,
            &shown,
            "service",
            "is required: the service's name (it names its containers, labels, Caddy route and journal)".into(),
        );
    } else if !valid_name(&service) {
        push(
            &mut problems,
            &shown,
            "service",
            format!(
                "`{service}` must be lowercase letters, digits, - and _, starting with a letter or digit"
            ),
        );
    }
    let raw_image = raw.image.clone().unwrap_or_default();
    let (image, default_tag) = match raw_image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), Some(tag.to_string())),
        _ => (raw_image.clone(), None),
    };
    if raw.image.is_none() {
        push(
            &mut problems,
            &shown,
            "image",
            "is required: the image repository, without a tag (the tag is chosen at deploy time)"
                .into(),
        );
    } else if image.trim().is_empty() {
        push(
            &mut problems,
            &shown,
            "image",
            "must name an image repository".into(),
        );
    }
    let servers: &[(String, raw::RawRole)] = raw.servers.as_deref().unwrap_or_default();
    if raw.servers.is_none() {
        push(
            &mut problems,
            &shown,
            "servers",
            "is required: roles and their hosts (e.g. `web:` with `hosts: [...]`)".into(),
        );
    } else if servers.is_empty() {
        push(
            &mut problems,
            &shown,
            "servers",
            "needs at least one role (e.g. `web:` with `hosts:`)".into(),
        );
    }
    if raw.dependencies.is_some() && raw.accessories.is_some() {
        push(&mut problems, &shown, "accessories", "`dependencies` and its older name `accessories` cannot both be present; keep `dependencies`".into());
    }

    let proxy = raw.proxy.as_ref().map(|p| {
        let healthcheck = p.healthcheck.as_ref().map(|h| HttpCheck {
            path: h.path.clone().unwrap_or_else(|| "/".into()),
            interval_s: h.interval.unwrap_or(10),
            timeout_s: h.timeout.unwrap_or(5),
            expect: match &h.expect_status {
                None => ExpectStatus::Any2xx,
                Some(Scalar(s)) => parse_expect(s).unwrap_or(ExpectStatus::Any2xx),
            },
        });
        ProxySpec {
            hosts: p.hosts.clone().unwrap_or_default(),
            app_port: p.app_port.unwrap_or(0),
            ssl: p.ssl.unwrap_or(true),
            ssl_email: p.ssl_email.clone(),
            healthcheck,
            image: p.image.clone().unwrap_or_else(|| "caddy:2-alpine".into()),
            http_port: p.http_port.unwrap_or(80),
            https_port: p.https_port.unwrap_or(443),
        }
    });
    if let Some(p) = &raw.proxy {
        if p.app_port.is_none() {
            push(
                &mut problems,
                &shown,
                "proxy.app_port",
                "is required when `proxy` is present".into(),
            );
        }
        if let Some(Scalar(s)) = p
            .healthcheck
            .as_ref()
            .and_then(|h| h.expect_status.as_ref())
        {
            if parse_expect(s).is_none() {
                push(
                    &mut problems,
                    &shown,
                    "proxy.healthcheck.expect_status",
                    format!("`{s}` is neither a status code nor 2xx/3xx"),
                );
            }
        }
        if let Some(path) = p.healthcheck.as_ref().and_then(|h| h.path.as_ref()) {
            if !path.starts_with('/') {
                push(
                    &mut problems,
                    &shown,
                    "proxy.healthcheck.path",
                    format!("`{path}` must start with /"),
                );
            }
        }
    }

    let mut roles = Vec::new();
    let mut role_specs = Vec::new();
    for (name, r) in servers {
        let key = format!("servers.{name}");
        if !valid_name(name) {
            push(
                &mut problems,
                &shown,
                &key,
                "role names are lowercase letters, digits, - and _".into(),
            );
        }
        let kind = if name == "web" {
            RoleKind::Web
        } else {
            RoleKind::Job
        };
        if kind == RoleKind::Web
            && raw.proxy.as_ref().and_then(|p| p.app_port).is_none()
            && raw.proxy.is_none()
        {
            push(
                &mut problems,
                &shown,
                &key,
                "the web role is proxied through Caddy and needs `proxy.app_port`".into(),
            );
        }
        let d = r.deploy.as_ref();
        let positive =
            |v: Option<u64>, field: &str, default: u64, problems: &mut Vec<String>| -> u64 {
                match v {
                    Some(0) => {
                        problems.push(format!(
                            "{shown}: {key}.deploy.{field}: must be a positive number of seconds"
                        ));
                        default
                    }
                    Some(s) => s,
                    None => default,
                }
            };
        let stop_default = if kind == RoleKind::Job { 30 } else { 10 };
        let timeouts = Timeouts {
            drain_ms: positive(
                d.and_then(|d| d.drain_timeout),
                "drain_timeout",
                30,
                &mut problems,
            ) * 1000,
            stop_ms: positive(
                d.and_then(|d| d.stop_timeout),
                "stop_timeout",
                stop_default,
                &mut problems,
            ) * 1000,
            boot_ms: positive(
                d.and_then(|d| d.boot_timeout),
                "boot_timeout",
                60,
                &mut problems,
            ) * 1000,
            op_ms: 30_000,
        };
        let mut seen = Vec::new();
        for host in &r.hosts {
            if host.trim().is_empty() {
                push(
                    &mut problems,
                    &shown,
                    &format!("{key}.{}", "hosts"),
                    "a host is empty".into(),
                );
            } else if seen.contains(&host) {
                push(
                    &mut problems,
                    &shown,
                    &format!("{key}.{}", "hosts"),
                    format!("{host} is listed twice"),
                );
            }
            seen.push(host);
        }
        let mut resources = Resources::default();
        if let Some(o) = &r.options {
            if let Some(Scalar(m)) = &o.memory {
                resources.memory = parse_bytes(m).or_else(|| {
                    push(
                        &mut problems,
                        &shown,
                        &format!("{key}.{}", "options.memory"),
                        format!("`{m}` is not a size like 512m or 4g"),
                    );
                    None
                });
            }
            if let Some(Scalar(m)) = &o.memory_reservation {
                resources.memory_reservation = parse_bytes(m).or_else(|| {
                    push(
                        &mut problems,
                        &shown,
                        &format!("{key}.{}", "options.memory_reservation"),
                        format!("`{m}` is not a size like 512m or 4g"),
                    );
                    None
                });
            }
            if let Some(Scalar(c)) = &o.cpus {
                match c.parse::<f64>() {
                    Ok(n) if n > 0.0 => resources.nano_cpus = Some((n * 1e9) as i64),
                    _ => push(
                        &mut problems,
                        &shown,
                        &format!("{key}.{}", "options.cpus"),
                        format!("`{c}` is not a positive number of CPUs"),
                    ),
                }
            }
            resources.cpu_shares = o.cpu_shares;
        }
        let volumes = namespace_volumes(&service, r.volumes.clone().unwrap_or_default());
        let cmd = r.cmd.as_ref().map(|c| match c {
            StringOrList::One(s) => vec!["/bin/sh".to_string(), "-c".to_string(), s.clone()],
            StringOrList::Many(v) => v.clone(),
        });
        let healthcheck = r.healthcheck.as_ref().map(|h| CmdCheck {
            cmd: h.cmd.clone(),
            interval_s: h.interval.unwrap_or(30),
            timeout_s: h.timeout.unwrap_or(10),
            retries: h.retries.unwrap_or(3),
        });
        roles.push(Role {
            name: name.clone(),
            kind,
            hosts: r.hosts.clone(),
            timeouts,
        });
        role_specs.push(RoleSpec {
            name: name.clone(),
            web: kind == RoleKind::Web,
            cmd,
            volumes,
            resources,
            healthcheck,
        });
    }

    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let home = std::env::var("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/root"));
    let resolve = |p: &str| -> PathBuf {
        if let Some(rest) = p.strip_prefix("~/") {
            home.join(rest)
        } else if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            base.join(p)
        }
    };

    // env.secret values: the environment first (an explicit override), then secrets_file,
    // read only when a name is missing from the environment.
    let mut file_secrets: Option<BTreeMap<String, String>> = None;
    let mut from_file = |name: &str, problems: &mut Vec<String>| -> Option<String> {
        let f = raw.secrets_file.as_ref()?;
        if file_secrets.is_none() {
            file_secrets = Some(secrets_file::read(&resolve(f)).unwrap_or_else(|e| {
                problems.push(format!("{shown}: secrets_file: {e}"));
                BTreeMap::new()
            }));
        }
        file_secrets.as_ref()?.get(name).cloned()
    };
    let mut env = BTreeMap::new();
    let secret_names: Vec<String> = raw
        .env
        .as_ref()
        .and_then(|e| e.secret.clone())
        .unwrap_or_default();
    if let Some(e) = &raw.env {
        for (k, Scalar(v)) in e.clear.iter().flatten() {
            env.insert(k.clone(), v.clone());
        }
        for name in e.secret.iter().flatten() {
            match secrets(name).or_else(|| from_file(name, &mut problems)) {
                Some(value) => {
                    env.insert(name.clone(), value);
                }
                None => problems.push(format!(
                    "{shown}: env.secret: {name} is not set; export it in the environment that runs odysseus{}",
                    match &raw.secrets_file {
                        Some(f) => format!(" or add it to {f}"),
                        None => " or name a secrets_file that has it".into(),
                    }
                )),
            }
        }
    }

    // registry: a literal value, or `[NAME]` naming a secret (resolved like env.secret).
    let mut registry_value = |key: &str, v: &Option<StringOrList>, problems: &mut Vec<String>| {
        match v {
            None => None,
            Some(StringOrList::One(s)) => Some(s.clone()),
            Some(StringOrList::Many(names)) if names.len() == 1 => {
                let name = &names[0];
                let found = secrets(name).or_else(|| from_file(name, problems));
                if found.is_none() {
                    problems.push(format!(
                        "{shown}: registry.{key}: {name} is not set; export it in the environment that runs odysseus{}",
                        match &raw.secrets_file {
                            Some(f) => format!(" or add it to {f}"),
                            None => " or name a secrets_file that has it".into(),
                        }
                    ));
                }
                found
            }
            Some(StringOrList::Many(_)) => {
                problems.push(format!(
                    "{shown}: registry.{key}: a value, or a list of exactly one secret name like [REGISTRY_PASSWORD]"
                ));
                None
            }
        }
    };
    let registry = match &raw.registry {
        None => None,
        Some(r) => {
            let username = registry_value("username", &r.username, &mut problems);
            let password = registry_value("password", &r.password, &mut problems);
            match (
                username,
                password,
                r.username.is_some(),
                r.password.is_some(),
            ) {
                (Some(username), Some(password), _, _) => Some(RegistryAuth {
                    server: r.server.clone().filter(|s| !s.trim().is_empty()),
                    username,
                    password,
                }),
                (_, _, true, false) => {
                    push(
                        &mut problems,
                        &shown,
                        "registry.password",
                        "is required with registry.username".into(),
                    );
                    None
                }
                (_, _, false, true) => {
                    push(
                        &mut problems,
                        &shown,
                        "registry.username",
                        "is required with registry.password".into(),
                    );
                    None
                }
                // Nothing to log in with (only `server`), or a value already reported.
                _ => None,
            }
        }
    };

    if raw.retain_versions == Some(0) {
        push(
            &mut problems,
            &shown,
            "retain_versions",
            "must be at least 1 (the version serving now is always kept)".into(),
        );
    }
    let on_failure = match raw.on_failure.as_deref() {
        None | Some("halt") => FailurePolicy::Halt,
        Some("rollback") => FailurePolicy::Rollback,
        Some(other) => {
            problems.push(format!(
                "{shown}: on_failure: `{other}` must be halt or rollback"
            ));
            FailurePolicy::Halt
        }
    };
    let batch_size = match raw.batch_size.as_ref().map(|s| s.0.trim().to_string()) {
        None => BatchSize::Hosts(1),
        Some(s) => {
            match s.strip_suffix('%').map(|p| p.trim().parse::<u32>()) {
                Some(Ok(p)) if (1..=100).contains(&p) => BatchSize::Percent(p),
                Some(_) => {
                    problems.push(format!("{shown}: batch_size: `{s}` must be a number of hosts or a percentage 1%-100%"));
                    BatchSize::Hosts(1)
                }
                None => match s.parse::<u32>() {
                    Ok(n) if n >= 1 => BatchSize::Hosts(n),
                    _ => {
                        problems.push(format!("{shown}: batch_size: `{s}` must be a number of hosts or a percentage 1%-100%"));
                        BatchSize::Hosts(1)
                    }
                },
            }
        }
    };

    // dependencies (or their older name, accessories; both at once is refused above).
    let mut dependencies = Vec::new();
    let raw_dependencies = raw.dependencies.as_ref().or(raw.accessories.as_ref());
    let dep_key = if raw.dependencies.is_some() {
        "dependencies"
    } else {
        "accessories"
    };
    for (name, d) in raw_dependencies.into_iter().flatten() {
        let key = format!("{dep_key}.{name}");
        if !valid_name(name) {
            push(
                &mut problems,
                &shown,
                &key,
                "dependency names are lowercase letters, digits, - and _".into(),
            );
        }
        if d.image.trim().is_empty() {
            push(
                &mut problems,
                &shown,
                &format!("{key}.image"),
                "must name an image".into(),
            );
        }
        if d.hosts.is_empty() {
            push(
                &mut problems,
                &shown,
                &format!("{key}.hosts"),
                "needs at least one host".into(),
            );
        }
        let mut ports = Vec::new();
        for p in d.ports.iter().flatten() {
            match parse_port(p) {
                Some(port) => ports.push(port),
                None => push(
                    &mut problems,
                    &shown,
                    &format!("{key}.ports"),
                    format!("`{p}` is not CONTAINER, HOST:CONTAINER or ADDRESS:HOST:CONTAINER"),
                ),
            }
        }
        let mut dep_env = BTreeMap::new();
        if let Some(e) = &d.env {
            for (k, Scalar(v)) in e.clear.iter().flatten() {
                dep_env.insert(k.clone(), v.clone());
            }
            for secret in e.secret.iter().flatten() {
                match secrets(secret).or_else(|| from_file(secret, &mut problems)) {
                    Some(value) => {
                        dep_env.insert(secret.clone(), value);
                    }
                    None => problems.push(format!(
                        "{shown}: {key}.env.secret: {secret} is not set; export it in the environment that runs odysseus{}",
                        match &raw.secrets_file {
                            Some(f) => format!(" or add it to {f}"),
                            None => " or name a secrets_file that has it".into(),
                        }
                    )),
                }
            }
        }
        dependencies.push(DependencySpec {
            name: name.clone(),
            image: d.image.clone(),
            hosts: d.hosts.clone(),
            cmd: d.cmd.as_ref().map(|c| match c {
                StringOrList::One(s) => vec!["/bin/sh".to_string(), "-c".to_string(), s.clone()],
                StringOrList::Many(v) => v.clone(),
            }),
            ports,
            volumes: namespace_volumes(&service, d.volumes.clone().unwrap_or_default()),
            env: dep_env,
            healthcheck: d.healthcheck.as_ref().map(|h| CmdCheck {
                cmd: h.cmd.clone(),
                interval_s: h.interval.unwrap_or(30),
                timeout_s: h.timeout.unwrap_or(10),
                retries: h.retries.unwrap_or(3),
            }),
        });
    }
    let mut warnings = Vec::new();
    for (name, d) in raw_dependencies.into_iter().flatten() {
        if d.proxy.is_some() {
            warnings.push(format!(
                "{dep_key}.{name}.proxy is not acted on: reach the dependency on the `odysseus` network as {service}-{name}, or through its published ports"
            ));
        }
    }
    if let Some(auth) = &registry {
        if !auth.covers(&raw_image) {
            warnings.push(format!(
                "registry.server is {}, but image {} is not on it: the login will not be used to pull it",
                auth.server.as_deref().unwrap_or("Docker Hub"),
                raw_image
            ));
        }
    }
    let mut not_yet_supported = Vec::new();
    for (present, key) in [(raw.builder.is_some(), "builder")] {
        if present {
            not_yet_supported.push(key);
        }
    }

    let raw_ssh = raw.ssh.unwrap_or_default();
    let keys: Vec<PathBuf> = match &raw_ssh.keys {
        Some(keys) => keys.iter().map(|k| resolve(k)).collect(),
        None => ["~/.ssh/id_ed25519", "~/.ssh/id_rsa"]
            .iter()
            .map(|k| resolve(k))
            .filter(|k| k.exists())
            .collect(),
    };
    if let Some(socket) = &raw_ssh.docker_socket {
        if !socket.starts_with('/') {
            problems.push(format!(
                "{shown}: ssh.docker_socket: `{socket}` must be an absolute path on the servers, like /var/run/docker.sock"
            ));
        }
    }
    let ssh = SshSettings {
        user: raw_ssh.user.clone().unwrap_or_else(|| "root".into()),
        keys,
        known_hosts: resolve(
            raw_ssh
                .known_hosts
                .as_deref()
                .unwrap_or("~/.ssh/known_hosts"),
        ),
        connect_timeout: std::time::Duration::from_secs(10),
        docker_socket: raw_ssh
            .docker_socket
            .clone()
            .unwrap_or_else(|| "/var/run/docker.sock".into()),
        trust_unknown: false,
    };

    if !problems.is_empty() {
        let lines = locate::KeyLines::scan(&String::from_utf8_lossy(bytes));
        let mut problems: Vec<String> = problems
            .into_iter()
            .map(|p| with_line(&shown, &lines, p))
            .collect();
        // In file order, as the reader will fix them.
        problems.sort_by_key(|p| {
            p.strip_prefix(&shown)
                .and_then(|r| r.strip_prefix(':'))
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(usize::MAX)
        });
        return Err(ConfigErrors { problems });
    }
    Ok(Config {
        ssh,
        ssh_port: raw_ssh.port.unwrap_or(22),
        path: path.to_path_buf(),
        service: service.clone(),
        image,
        default_tag,
        roles,
        spec: ServiceSpec {
            service,
            dependencies,
            registry,
            roles: role_specs,
            proxy,
            env,
            network_subnet: raw.network.and_then(|n| n.subnet),
        },
        batch_size,
        on_failure,
        retain_versions: raw.retain_versions.unwrap_or(5),
        digest: format!("fnv64:{:016x}", fnv64(bytes)),
        not_yet_supported,
        warnings,
        secret_names,
    })
}

impl Config {
    /// Every host, in the order they first appear.
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = Vec::new();
        for role in &self.roles {
            for host in &role.hosts {
                if !hosts.contains(host) {
                    hosts.push(host.clone());
                }
            }
        }
        hosts
    }

    /// Narrows the config to some hosts and roles (`deploy --hosts/--roles`); empty
    /// lists mean all. A name the config does not have is an error naming those it has.
    pub fn restrict(&mut self, hosts: &[String], roles: &[String]) -> Result<(), String> {
        let all_hosts = self.hosts();
        for h in hosts {
            if !all_hosts.contains(h) {
                return Err(format!(
                    "--hosts: {h} is not a host of the config (hosts: {})",
                    all_hosts.join(", ")
                ));
            }
        }
        for r in roles {
            if !self.roles.iter().any(|role| &role.name == r) {
                return Err(format!(
                    "--roles: {r} is not a role of the config (roles: {})",
                    self.roles
                        .iter()
                        .map(|r| r.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        self.roles
            .retain(|r| roles.is_empty() || roles.contains(&r.name));
        for role in &mut self.roles {
            role.hosts.retain(|h| hosts.is_empty() || hosts.contains(h));
        }
        self.roles.retain(|r| !r.hosts.is_empty());
        if self.roles.is_empty() {
            return Err("--hosts and --roles leave nothing to deploy: no selected role runs on a selected host".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_written_as_docker_writes_them() {
        assert_eq!(parse_port("5432"), Some((5432, "0.0.0.0".into(), 5432)));
        assert_eq!(
            parse_port("5433:5432"),
            Some((5432, "0.0.0.0".into(), 5433))
        );
        assert_eq!(
            parse_port("127.0.0.1:5433:5432"),
            Some((5432, "127.0.0.1".into(), 5433))
        );
        assert_eq!(parse_port("0"), None);
        assert_eq!(parse_port("a:b"), None);
        assert_eq!(parse_port(":1:2"), None);
    }

    #[test]
    fn restrict_keeps_the_chosen_hosts_and_roles_and_names_unknown_ones() {
        let text = "service: app\nimage: app\nservers:\n  web:\n    hosts: [a, b]\n  jobs:\n    hosts: [b, c]\nproxy:\n  app_port: 80\n";
        let load = || load_str(text).unwrap();
        let mut c = load();
        c.restrict(&["b".into()], &[]).unwrap();
        assert_eq!(c.hosts(), ["b"]);
        assert_eq!(c.roles.len(), 2);
        let mut c = load();
        c.restrict(&[], &["jobs".into()]).unwrap();
        assert_eq!(c.hosts(), ["b", "c"]);
        let mut c = load();
        assert!(c
            .restrict(&["a".into()], &["jobs".into()])
            .unwrap_err()
            .contains("leave nothing"));
        let mut c = load();
        assert!(c
            .restrict(&["z".into()], &[])
            .unwrap_err()
            .contains("(hosts: a, b, c)"));
        let mut c = load();
        assert!(c
            .restrict(&[], &["db".into()])
            .unwrap_err()
            .contains("(roles: web, jobs)"));
    }

    fn load_str(text: &str) -> Result<Config, ConfigErrors> {
        let dir = std::env::temp_dir().join(format!(
            "odysseus-config-test-{}-{}",
            std::process::id(),
            fnv64(text.as_bytes())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("deploy.yml");
        std::fs::write(&path, text).unwrap();
        let result = load(&path, &|name| {
            (name == "DATABASE_URL").then(|| "postgres://x".to_string())
        });
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    #[test]
    fn a_typical_file_validates_with_defaults() {
        let c = load_str(
            "service: myapp\nimage: registry/myapp\nservers:\n  web:\n    hosts: [local]\n  jobs:\n    hosts: [local]\n    cmd: bin/jobs\nproxy:\n  app_port: 3000\n  healthcheck:\n    path: /health\n    expect_status: 2xx\nenv:\n  clear: { RAILS_ENV: production, PORT: 3000 }\n  secret: [DATABASE_URL]\n",
        )
        .unwrap();
        assert_eq!(c.roles.len(), 2);
        assert_eq!(c.roles[0].timeouts.drain_ms, 30_000);
        assert_eq!(c.roles[1].timeouts.stop_ms, 30_000);
        assert_eq!(c.spec.env["PORT"], "3000");
        assert_eq!(c.spec.env["DATABASE_URL"], "postgres://x");
        assert_eq!(
            c.spec
                .proxy
                .as_ref()
                .unwrap()
                .healthcheck
                .as_ref()
                .unwrap()
                .expect,
            ExpectStatus::Class(2)
        );
    }

    #[test]
    fn a_typo_names_its_line_and_the_closest_key() {
        let err = load_str(
            "service: myapp\nimage: x\nretain_version: 3\nservers:\n  web:\n    hosts: [local]\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("deploy.yml:3:"), "{text}");
        assert!(text.contains("did you mean `retain_versions`?"), "{text}");
    }

    #[test]
    fn an_empty_file_and_missing_secrets_are_clear_errors() {
        assert!(load_str("\n# nothing\n")
            .unwrap_err()
            .to_string()
            .contains("the file is empty"));
        let err = load_str(
            "service: a\nimage: b\nservers:\n  jobs:\n    hosts: [local]\nenv:\n  secret: [NOPE]\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("NOPE is not set"), "{err}");
    }

    #[test]
    fn sizes_and_statuses_parse() {
        assert_eq!(parse_bytes("4g"), Some(4 * 1024 * 1024 * 1024));
        assert_eq!(parse_bytes("512m"), Some(512 * 1024 * 1024));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_expect("200"), Some(ExpectStatus::Exact(200)));
        assert_eq!(parse_expect("3xx"), Some(ExpectStatus::Class(3)));
        assert_eq!(BatchSize::Percent(25).hosts(10), 3);
    }
}
