//! Loading and validating deploy.yml. Every problem is reported at once, each with the
//! file and, where the parser knows it, the line and column.

pub mod encrypted;
mod locate;
mod problems;
mod raw;
pub mod secrets_file;
mod validate;
mod values;

use std::fmt;
use std::path::{Path, PathBuf};

use odysseus_engine::machine::{FailurePolicy, RoleKind, Timeouts};
use odysseus_executors::docker::spec::ServiceSpec;
use odysseus_executors::ssh::SshSettings;

#[cfg(test)]
use odysseus_executors::docker::spec::ExpectStatus;
use raw::RawConfig;
#[cfg(test)]
use values::{fnv64, parse_bytes, parse_expect, parse_port};

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
    /// Deployments whose journal each host keeps (`journal.keep`, default 100); older
    /// copies are removed after a completed deployment. This machine's journal keeps all.
    pub journal_keep: usize,
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
    /// How the image is built (defaults when deploy.yml has no `builder`).
    pub build: odysseus_executors::docker::build::BuildSpec,
    /// deploy.yml has a `builder` section.
    pub builder_configured: bool,
    /// Why a build cannot start here (a `builder.secrets` name no source has).
    pub build_lacks: Vec<String>,
    /// What `app console` runs in a one-off container.
    pub console: Option<String>,
    /// The release command's argv (`release_command`), run once per deployment.
    pub release_command: Option<Vec<String>>,
    /// Kamal's `hooks_path`: the only folder hooks are looked for in, when set.
    pub hooks_path: Option<String>,
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

impl Config {
    /// Refuses a build this machine lacks something for, naming it with deploy.yml.
    pub fn check_buildable(&self) -> Result<(), String> {
        if let Some(why) = self.build.several_platforms() {
            return Err(why);
        }
        if self.build_lacks.is_empty() {
            return Ok(());
        }
        Err(format!(
            "cannot build here: {} ({})",
            self.build_lacks.join("; "),
            self.path.display()
        ))
    }
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

/// The largest deploy.yml read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Loads deploy.yml, resolving `env.secret` names from `secrets` (the process
/// environment, in practice).
/// Whether every secret must have its value on this machine (what a deploy needs), or
/// may be missing here (what `validate` and the read-only commands need: a secret only
/// the production deployer has is then a warning naming where it would come from).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SecretsHere {
    Required,
    MayLack,
}

pub fn load(path: &Path, secrets: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    load_with(path, secrets, SecretsHere::Required)
}

pub fn load_with(
    path: &Path,
    secrets: &dyn Fn(&str) -> Option<String>,
    here: SecretsHere,
) -> Result<Config, ConfigErrors> {
    use std::io::Read;
    let cannot = |e: std::io::Error| ConfigErrors {
        problems: vec![format!("{}: cannot read: {e}", path.display())],
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(ConfigErrors {
            problems: vec![format!(
                "{}: is a directory, not a deploy.yml",
                path.display()
            )],
        });
    }
    // A deploy.yml is a few kilobytes: a device or a huge file is a mistake, and is
    // never read past the limit.
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigErrors {
            problems: vec![format!(
                "{}: larger than {} KiB; a deploy.yml is a few kilobytes (is this the right file?)",
                path.display(),
                MAX_CONFIG_BYTES / 1024
            )],
        });
    }
    parse_with(path, &bytes, secrets, here)
}

/// Where deploy.yml's `secrets_file` is, without checking the rest of the file (whose
/// secrets may not be set yet: `odysseus secrets` is how they get set).
pub fn secrets_file_of(path: &Path) -> Result<Option<std::path::PathBuf>, String> {
    #[derive(serde::Deserialize)]
    struct Only {
        secrets_file: Option<String>,
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let only: Only = serde_saphyr::from_str(&blank_extension_keys(&text))
        .map_err(|e| parse_problem(path, &e))?;
    Ok(only
        .secrets_file
        .map(|f| validate::Resolver::new(path).path(&f)))
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
    parse_with(path, bytes, secrets, SecretsHere::Required)
}

pub fn parse_with(
    path: &Path,
    bytes: &[u8],
    secrets: &dyn Fn(&str) -> Option<String>,
    here: SecretsHere,
) -> Result<Config, ConfigErrors> {
    let shown = path.display().to_string();
    let one = |p: String| ConfigErrors { problems: vec![p] };
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        one(format!(
            "{shown}:{line}: not UTF-8 text (an invalid byte on this line)"
        ))
    })?;
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(one(format!("{shown}: the file is empty; a deploy.yml needs at least `service`, `image` and `servers`")));
    }
    let raw: RawConfig = serde_saphyr::from_str(&blank_extension_keys(&text))
        .map_err(|e| one(parse_problem(path, &e)))?;
    validate::validate(path, raw, bytes, secrets, here)
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
    fn a_huge_timeout_is_a_problem_not_a_crash() {
        let e = load_str(
            "service: myapp\nimage: myapp\nservers:\n  web:\n    hosts: [local]\n    deploy:\n      boot_timeout: 18446744073709551615\n      drain_timeout: 18446744073709552\nproxy:\n  app_port: 3000\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(":7: servers.web.deploy.boot_timeout: 18446744073709551615 seconds is more than a day")
                && e.contains(":8: servers.web.deploy.drain_timeout:"),
            "{e}"
        );
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
