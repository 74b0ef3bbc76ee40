//! From the parsed shapes to a `Config`, every problem reported at once with its key
//! (and so its line). One file per section of deploy.yml.

mod builder;
mod dependencies;
mod proxy;
mod roles;
mod secrets;

use std::path::{Path, PathBuf};

use odysseus_engine::machine::FailurePolicy;
use odysseus_executors::docker::spec::{RegistryAuth, ServiceSpec};
use odysseus_executors::ssh::SshSettings;

use super::problems::Problems;
use super::raw::{RawConfig, RawRegistry};
use super::values::{fnv64, valid_name};
use super::{BatchSize, Config, ConfigErrors};
use secrets::SecretSource;

pub(super) fn validate(
    path: &Path,
    raw: RawConfig,
    bytes: &[u8],
    environment: &dyn Fn(&str) -> Option<String>,
    here: super::SecretsHere,
) -> Result<Config, ConfigErrors> {
    let shown = path.display().to_string();
    let mut problems = Problems::new();

    let service = raw.service.clone().unwrap_or_default();
    if raw.service.is_none() {
        problems.push(
            "service",
            "is required: the service's name (it names its containers, labels, Caddy route and journal)",
        );
    } else if !valid_name(&service) {
        problems.push(
            "service",
            format!(
                "`{service}` must be lowercase letters, digits, - and _, starting with a letter or digit, at most 63 characters"
            ),
        );
    }
    let release_command = raw.release_command.as_ref().and_then(|c| {
        super::values::command(c)
            .map_err(|why| problems.push("release_command", why))
            .ok()
    });
    let raw_image = raw.image.clone().unwrap_or_default();
    let (image, default_tag) = match raw_image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), Some(tag.to_string())),
        _ => (raw_image.clone(), None),
    };
    if raw.image.is_none() {
        problems.push(
            "image",
            "is required: the image repository, without a tag (the tag is chosen at deploy time)",
        );
    } else if image.trim().is_empty() {
        problems.push("image", "must name an image repository");
    } else if let Err(why) = super::values::check_image(&raw_image) {
        problems.push("image", why);
    }
    let journal_keep = raw.journal.as_ref().and_then(|j| j.keep).unwrap_or(100);
    if !(1..=100_000).contains(&journal_keep) {
        problems.push(
            "journal.keep",
            "must be between 1 and 100000 deployments (each host keeps that many of the service's journal)",
        );
    }
    if raw.retain_versions.is_some_and(|n| n > 1000) {
        problems.push("retain_versions", "at most 1000 versions are kept");
    }
    let servers = raw.servers.as_deref().unwrap_or_default();
    if raw.servers.is_none() {
        problems.push(
            "servers",
            "is required: roles and their hosts (e.g. `web:` with `hosts: [...]`)",
        );
    } else if servers.is_empty() {
        problems.push(
            "servers",
            "needs at least one role (e.g. `web:` with `hosts:`)",
        );
    }
    if raw.dependencies.is_some() && raw.accessories.is_some() {
        problems.push("accessories", "`dependencies` and its older name `accessories` cannot both be present; keep `dependencies`");
    }

    let (roles, role_specs) = roles::roles(&service, servers, raw.proxy.is_some(), &mut problems);

    let resolve = Resolver::new(path);
    let proxy = proxy::proxy(raw.proxy.as_ref(), &resolve, &mut problems);
    let mut secrets = SecretSource::new(
        environment,
        raw.secrets_file
            .as_ref()
            .map(|f| (f.clone(), resolve.path(f))),
        here == super::SecretsHere::MayLack,
    );
    let env = secrets.env(raw.env.as_ref(), "env", &mut problems);
    let secret_names: Vec<String> = raw
        .env
        .as_ref()
        .and_then(|e| e.secret.clone())
        .unwrap_or_default();
    let registry = raw
        .registry
        .as_ref()
        .and_then(|r| registry(r, &mut secrets, &mut problems));

    if raw.retain_versions == Some(0) {
        problems.push(
            "retain_versions",
            "must be at least 1 (the version serving now is always kept)",
        );
    }
    let on_failure = match raw.on_failure.as_deref() {
        None | Some("halt") => FailurePolicy::Halt,
        Some("rollback") => FailurePolicy::Rollback,
        Some(other) => {
            problems.push("on_failure", format!("`{other}` must be halt or rollback"));
            FailurePolicy::Halt
        }
    };
    let batch_size = batch_size(raw.batch_size.as_ref().map(|s| s.0.trim()), &mut problems);

    // dependencies (or their older name, accessories; both at once is refused above).
    let raw_dependencies = raw.dependencies.as_ref().or(raw.accessories.as_ref());
    let dep_key = if raw.dependencies.is_some() {
        "dependencies"
    } else {
        "accessories"
    };
    let dependencies = dependencies::dependencies(
        &service,
        dep_key,
        raw_dependencies,
        &mut secrets,
        &mut problems,
    );
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
    let not_yet_supported = Vec::new();
    for (key, why) in std::mem::take(&mut secrets.unavailable) {
        warnings.push(format!("{key}: {why}"));
    }
    let ssh_user = raw
        .ssh
        .as_ref()
        .and_then(|s| s.user.clone())
        .unwrap_or_else(|| "root".into());
    let (build, build_lacks) = builder::builder(
        raw.builder.as_ref(),
        &ssh_user,
        &resolve,
        &mut secrets,
        &mut problems,
    );

    let raw_ssh = raw.ssh.unwrap_or_default();
    let keys: Vec<PathBuf> = match &raw_ssh.keys {
        Some(keys) => keys.iter().map(|k| resolve.path(k)).collect(),
        None => ["~/.ssh/id_ed25519", "~/.ssh/id_rsa"]
            .iter()
            .map(|k| resolve.path(k))
            .filter(|k| k.exists())
            .collect(),
    };
    if let Some(socket) = &raw_ssh.docker_socket {
        if !socket.starts_with('/') {
            problems.push(
                "ssh.docker_socket",
                format!(
                    "`{socket}` must be an absolute path on the servers, like /var/run/docker.sock"
                ),
            );
        }
    }
    let ssh = SshSettings {
        user: raw_ssh.user.clone().unwrap_or_else(|| "root".into()),
        keys,
        known_hosts: resolve.path(
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
        trust_fingerprint: None,
    };

    if !problems.is_empty() {
        return Err(ConfigErrors {
            problems: problems.render(&shown, &String::from_utf8_lossy(bytes)),
        });
    }
    let mut secret_values = secrets.handed.clone();
    if let Some(r) = &registry {
        secret_values.push(("registry.password".into(), r.password.clone()));
    }
    odysseus_executors::redact::remember(&secret_values);
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
            secret_values,
            // Set by `deploy`, which runs git.
            git_commit: None,
        },
        batch_size,
        on_failure,
        retain_versions: raw.retain_versions.unwrap_or(5),
        journal_keep: journal_keep as usize,
        digest: format!("fnv64:{:016x}", fnv64(bytes)),
        not_yet_supported,
        warnings,
        secret_names,
        builder_configured: raw.builder.is_some(),
        build,
        build_lacks,
        console: raw.console.filter(|c| !c.trim().is_empty()),
        release_command,
        hooks_path: raw.hooks_path.filter(|p| !p.trim().is_empty()),
    })
}

/// Paths in deploy.yml: `~/` is the home directory, relative ones are relative to the
/// file's folder.
pub(crate) struct Resolver {
    base: PathBuf,
    home: PathBuf,
}

impl Resolver {
    pub(crate) fn new(config: &Path) -> Self {
        Resolver {
            base: config
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
            home: std::env::var("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|_| PathBuf::from("/root")),
        }
    }

    pub(crate) fn path(&self, p: &str) -> PathBuf {
        if let Some(rest) = p.strip_prefix("~/") {
            self.home.join(rest)
        } else if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            self.base.join(p)
        }
    }
}

/// `registry:` — a login for pulls; each of username/password a literal or `[SECRET]`.
fn registry(
    r: &RawRegistry,
    secrets: &mut SecretSource,
    problems: &mut Problems,
) -> Option<RegistryAuth> {
    let username = secrets.registry_value("username", &r.username, problems);
    let password = secrets.registry_value("password", &r.password, problems);
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
            problems.push("registry.password", "is required with registry.username");
            None
        }
        (_, _, false, true) => {
            problems.push("registry.username", "is required with registry.password");
            None
        }
        // Nothing to log in with (only `server`), or a value already reported.
        _ => None,
    }
}

/// `batch_size:` — a number of hosts or a percentage.
fn batch_size(raw: Option<&str>, problems: &mut Problems) -> BatchSize {
    let Some(s) = raw else {
        return BatchSize::Hosts(1);
    };
    let parsed = match s.strip_suffix('%').map(|p| p.trim().parse::<u32>()) {
        Some(Ok(p)) if (1..=100).contains(&p) => Some(BatchSize::Percent(p)),
        Some(_) => None,
        None => match s.parse::<u32>() {
            Ok(n) if n >= 1 => Some(BatchSize::Hosts(n)),
            _ => None,
        },
    };
    parsed.unwrap_or_else(|| {
        problems.push(
            "batch_size",
            format!("`{s}` must be a number of hosts or a percentage 1%-100%"),
        );
        BatchSize::Hosts(1)
    })
}
