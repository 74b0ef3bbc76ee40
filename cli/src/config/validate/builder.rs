//! `builder:` — how the image is built: where (this machine, or a remote host over SSH),
//! from what (context, Dockerfile, target), with which build args and platforms.

use std::collections::BTreeMap;

use odysseus_executors::docker::build::BuildSpec;

use super::super::problems::Problems;
use super::super::raw::{RawBuilder, Scalar, StringOrList};
use super::super::values::check_env_name;
use super::secrets::SecretSource;
use super::Resolver;

/// The build settings, and what a build would lack: secrets no source has here are not
/// a problem of the file (a deploy of a tag, or `validate` in CI, needs none of them),
/// but a build refuses to start without them.
pub(super) fn builder(
    raw: Option<&RawBuilder>,
    ssh_user: &str,
    resolve: &Resolver,
    secrets: &mut SecretSource,
    problems: &mut Problems,
) -> (BuildSpec, Vec<String>) {
    let mut missing = Vec::new();
    let default = RawBuilder::default();
    let b = raw.unwrap_or(&default);
    let remote_host = remote_host(b, ssh_user, problems);
    let context = resolve.path(b.context.as_deref().unwrap_or("."));
    let dockerfile = dockerfile_path(b.dockerfile.as_deref(), &context, resolve);

    let mut args = BTreeMap::new();
    if b.build_args.is_some() && b.args.is_some() {
        problems.push(
            "builder.args",
            "`args` is Kamal's name for `build_args`: keep one of them",
        );
    }
    let (args_key, clear) = match (&b.build_args, &b.args) {
        (Some(a), _) => ("builder.build_args", Some(a)),
        (None, Some(a)) => ("builder.args", Some(a)),
        (None, None) => ("builder.build_args", None),
    };
    for (name, Scalar(value)) in clear.into_iter().flatten() {
        if let Err(why) = check_env_name(name) {
            problems.push(args_key, why);
        }
        args.insert(name.clone(), value.clone());
    }
    let mut secret_args = Vec::new();
    for name in b.secrets.iter().flatten() {
        if let Err(why) = check_env_name(name) {
            problems.push("builder.secrets", why);
            continue;
        }
        if args.contains_key(name) {
            problems.push(
                "builder.secrets",
                format!("{name} is also a clear build arg: keep one"),
            );
            continue;
        }
        match secrets.get(name, problems) {
            Some(value) => {
                args.insert(name.clone(), value);
                secret_args.push(name.clone());
            }
            None => missing.push(format!("builder.secrets: {}", secrets.missing(name))),
        }
    }

    let mut platforms: Vec<String> = match &b.arch {
        None => Vec::new(),
        Some(StringOrList::One(a)) => vec![platform(a)],
        Some(StringOrList::Many(list)) => list.iter().map(|a| platform(a)).collect(),
    };
    platforms.dedup();
    if b.multiarch == Some(true) && platforms.len() < 2 {
        // Kamal's `multiarch: true` means amd64 and arm64 at once.
        platforms = vec!["linux/amd64".into(), "linux/arm64".into()];
    }
    for p in &platforms {
        if !p.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        }) {
            problems.push(
                "builder.arch",
                format!("`{p}` is not a platform like amd64, arm64 or linux/arm/v7"),
            );
        }
    }
    if b.target.as_deref().is_some_and(|t| t.trim().is_empty()) {
        problems.push(
            "builder.target",
            "names a stage of the Dockerfile, and is empty",
        );
    }

    let spec = BuildSpec {
        context,
        dockerfile,
        args,
        secret_args,
        platforms,
        no_cache: b.cache == Some(false),
        target: b.target.clone(),
        remote_host,
        push: b.push == Some(true),
        // The state dir is added by the command, which knows it.
        never_send: secrets.file_path().into_iter().collect(),
    };
    (spec, missing)
}

/// `amd64` → `linux/amd64`; a full platform as written.
fn platform(arch: &str) -> String {
    let arch = arch.trim();
    if arch.contains('/') {
        arch.to_string()
    } else {
        format!("linux/{arch}")
    }
}

/// The remote builder's host, from `strategy: remote` + `host`, or Kamal's
/// `remote: ssh://[user@]host[:port]`.
fn remote_host(b: &RawBuilder, ssh_user: &str, problems: &mut Problems) -> Option<String> {
    let from_url = b.remote.as_deref().and_then(|url| {
        let Some(rest) = url.strip_prefix("ssh://") else {
            problems.push(
                "builder.remote",
                format!("`{url}` must be ssh://HOST or ssh://USER@HOST:PORT"),
            );
            return None;
        };
        let (user, host) = match rest.split_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        if let Some(u) = user.filter(|u| *u != ssh_user) {
            problems.push(
                "builder.remote",
                format!("the remote builder is reached as ssh.user ({ssh_user}), like the servers, not as {u}"),
            );
        }
        let host = host.trim_end_matches('/');
        if host.is_empty() {
            problems.push("builder.remote", "names no host");
            return None;
        }
        Some(host.to_string())
    });
    match (b.strategy.as_deref(), &b.host, from_url) {
        (Some("remote"), Some(h), None) if !h.trim().is_empty() => Some(h.trim().to_string()),
        (Some("remote"), None, None) => {
            problems.push(
                "builder.host",
                "is required with strategy: remote (the host whose Docker engine builds, reached over SSH)",
            );
            None
        }
        (Some("remote") | None, None, Some(h)) => Some(h),
        (_, Some(_), Some(_)) => {
            problems.push(
                "builder.remote",
                "name the remote builder once: `host` or `remote`",
            );
            None
        }
        (Some("local") | None, Some(_), None) => {
            problems.push("builder.host", "is for strategy: remote");
            None
        }
        (Some("local"), None, Some(_)) => {
            problems.push("builder.remote", "is for strategy: remote");
            None
        }
        (Some("local") | None, None, None) => None,
        (Some("remote"), Some(_), None) => {
            problems.push("builder.host", "names no host");
            None
        }
        (Some(other), _, _) => {
            problems.push(
                "builder.strategy",
                format!("`{other}` must be local or remote"),
            );
            None
        }
    }
}

/// Where the Dockerfile is: a relative `dockerfile` is read in the context, as the Ruby
/// tool does (`context: web` with `dockerfile: Dockerfile` is `web/Dockerfile`); when the
/// context has no such file but deploy.yml's folder does, that one (what odysseus read
/// before, so such files keep working). `~/` and absolute paths are taken as written.
fn dockerfile_path(
    written: Option<&str>,
    context: &std::path::Path,
    resolve: &Resolver,
) -> std::path::PathBuf {
    let written = written.unwrap_or("Dockerfile");
    if written.starts_with('/') || written.starts_with("~/") {
        return resolve.path(written);
    }
    let in_context = context.join(written);
    let beside_config = resolve.path(written);
    if !in_context.is_file() && beside_config.is_file() {
        beside_config
    } else {
        in_context
    }
}
