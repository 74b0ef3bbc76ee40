//! deploy.yml as written, key for key. Every struct denies unknown keys, so a typo is an
//! error with its line and column instead of a silently ignored setting.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    // The three required keys are optional here so that all the missing ones are
    // reported at once, by the validation, instead of the first one by the parser.
    pub service: Option<String>,
    pub image: Option<String>,
    pub retain_versions: Option<u32>,
    pub secrets_file: Option<String>,
    #[serde(default, deserialize_with = "some_ordered_map")]
    pub servers: Option<Vec<(String, RawRole)>>,
    pub proxy: Option<RawProxy>,
    pub env: Option<RawEnv>,
    pub ssh: Option<RawSsh>,
    pub dependencies: Option<BTreeMap<String, RawDependency>>,
    /// The older name of `dependencies`.
    pub accessories: Option<BTreeMap<String, RawDependency>>,
    pub builder: Option<RawBuilder>,
    pub registry: Option<RawRegistry>,
    /// Ours: how many hosts deploy at once: a number or a percentage ("25%").
    pub batch_size: Option<Scalar>,
    /// Ours: `halt` (default) or `rollback`.
    pub on_failure: Option<String>,
    /// Ours: the Docker network `odysseus` (its subnet).
    pub network: Option<RawNetwork>,
    /// Ours: what `odysseus app console` runs (e.g. `bin/rails console`).
    pub console: Option<String>,
    /// Ours: run once per deployment in the new image before any host switches (e.g.
    /// `bin/rails db:migrate`).
    pub release_command: Option<StringOrList>,
    /// Ours: the hosts' copies of the journal (`keep`: how many deployments each host
    /// keeps).
    pub journal: Option<RawJournal>,
    /// Kamal's: the folder of the project's hooks (default `.kamal/hooks`), relative to
    /// the project's root (deploy.yml's folder, or the parent of its `config/`).
    pub hooks_path: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawJournal {
    pub keep: Option<u32>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub hosts: Vec<String>,
    pub cmd: Option<StringOrList>,
    pub volumes: Option<Vec<String>>,
    pub options: Option<RawOptions>,
    pub healthcheck: Option<RawRoleHealth>,
    pub deploy: Option<RawRoleDeploy>,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub enum StringOrList {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawOptions {
    pub memory: Option<Scalar>,
    pub memory_reservation: Option<Scalar>,
    pub cpus: Option<Scalar>,
    pub cpu_shares: Option<i64>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawRoleHealth {
    pub cmd: String,
    pub interval: Option<Seconds>,
    pub timeout: Option<Seconds>,
    pub retries: Option<u32>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRoleDeploy {
    pub drain_timeout: Option<Seconds>,
    pub stop_timeout: Option<Seconds>,
    pub boot_timeout: Option<Seconds>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    pub hosts: Option<Vec<String>>,
    pub app_port: Option<u16>,
    pub ssl: Option<bool>,
    pub ssl_email: Option<String>,
    pub healthcheck: Option<RawProxyHealth>,
    pub image: Option<String>,
    pub http_port: Option<u16>,
    pub https_port: Option<u16>,
    /// Ours: the ACME directory Caddy gets certificates from (default Let's Encrypt).
    pub acme_ca: Option<String>,
    /// Ours: a PEM file on this machine with the root Caddy must trust for `acme_ca`.
    pub acme_ca_root: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawProxyHealth {
    pub path: Option<String>,
    pub interval: Option<Seconds>,
    pub timeout: Option<Seconds>,
    pub expect_status: Option<Scalar>,
}

/// A service the app needs beside it (a database, a cache): one long-running container
/// per host, booted and removed by `odysseus dependency`, not rolled by deploys.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawDependency {
    pub image: String,
    #[serde(default)]
    pub hosts: Vec<String>,
    pub cmd: Option<StringOrList>,
    pub ports: Option<Vec<String>>,
    pub volumes: Option<Vec<String>>,
    pub env: Option<RawEnv>,
    pub healthcheck: Option<RawRoleHealth>,
    /// Accepted, not acted on: a dependency is reached on the `odysseus` network or its
    /// published ports, not through Caddy.
    pub proxy: Option<IgnoredAny>,
}

/// `username` and `password` are literal strings, or (Kamal's form) a one-element list
/// naming a secret: `password: [REGISTRY_PASSWORD]`.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    pub server: Option<String>,
    pub username: Option<StringOrList>,
    pub password: Option<StringOrList>,
}

/// `builder:` — how `odysseus build` and `deploy` make `<image>:<version>`. The Ruby
/// tool's keys, plus Kamal's spellings users bring along (`args`, `remote`, `secrets`).
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBuilder {
    /// `local` (default) or `remote` (with `host`).
    pub strategy: Option<String>,
    /// The remote builder: a host as in `servers`, reached over SSH like them.
    pub host: Option<String>,
    /// Kamal's form of a remote builder: `ssh://[user@]host[:port]`.
    pub remote: Option<String>,
    pub dockerfile: Option<String>,
    pub context: Option<String>,
    /// One platform architecture (`amd64`), or several (needs buildx: refused clearly).
    pub arch: Option<StringOrList>,
    pub multiarch: Option<bool>,
    pub build_args: Option<BTreeMap<String, Scalar>>,
    /// Kamal's name for `build_args`.
    pub args: Option<BTreeMap<String, Scalar>>,
    /// Secret names passed as build args (values from the secret sources, never shown).
    pub secrets: Option<Vec<String>>,
    /// A stage of a multi-stage Dockerfile.
    pub target: Option<String>,
    /// `false` builds without the engine's layer cache.
    pub cache: Option<bool>,
    /// Push the built image to `registry` (the servers pull it from there).
    pub push: Option<bool>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawEnv {
    pub clear: Option<BTreeMap<String, Scalar>>,
    pub secret: Option<Vec<String>>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    pub user: Option<String>,
    pub keys: Option<Vec<String>>,
    pub port: Option<u16>,
    pub known_hosts: Option<String>,
    pub docker_socket: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    pub subnet: Option<String>,
}

/// A YAML scalar that may be written as a number, a boolean or a string (`memory: 4g`,
/// `cpus: 2`, `expect_status: "2xx"`, `RAILS_ENV: production`, `PORT: 3000`).
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

fn some_ordered_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<(String, RawRole)>>, D::Error> {
    ordered_map(d).map(Some)
}

/// A mapping kept in the order it was written (roles deploy in config order). Kamal's
/// short forms are accepted too: `servers: [host, …]` is the web role on those hosts,
/// and a role may be just its list of hosts (`web: [host, …]`).
fn ordered_map<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, RawRole)>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<(String, RawRole)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a mapping of role names to roles (or a list of hosts for the web role)")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, RoleEntry(v))) = map.next_entry::<String, RoleEntry>()? {
                out.push((k, v));
            }
            Ok(out)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut hosts = Vec::new();
            while let Some(h) = seq.next_element::<String>()? {
                hosts.push(h);
            }
            Ok(vec![(
                "web".to_string(),
                RawRole {
                    hosts,
                    ..RawRole::default()
                },
            )])
        }
    }
    d.deserialize_any(V)
}

/// A role as a mapping (the full form) or as a bare list of hosts.
struct RoleEntry(RawRole);

impl<'de> Deserialize<'de> for RoleEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RoleEntry;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a role (`hosts:`, `cmd:`, …) or a list of hosts")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RoleEntry, A::Error> {
                RawRole::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RoleEntry)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RoleEntry, A::Error> {
                let mut hosts = Vec::new();
                while let Some(h) = seq.next_element::<String>()? {
                    hosts.push(h);
                }
                Ok(RoleEntry(RawRole {
                    hosts,
                    ..RawRole::default()
                }))
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration in whole seconds: `30` as the Ruby tool writes it, or `"30s"`, `"2m"`, `"1h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub u64);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number of seconds (30, or \"30s\", \"2m\", \"1h\")")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Seconds, E> {
                Ok(Seconds(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Seconds, E> {
                u64::try_from(v)
                    .map(Seconds)
                    .map_err(|_| E::custom(format!("{v} seconds: a duration cannot be negative")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Seconds, E> {
                let t = v.trim();
                let (digits, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
                    Some(i) => t.split_at(i),
                    None => (t, "s"),
                };
                let n: u64 = digits.parse().map_err(|_| {
                    E::custom(format!(
                        "`{v}` is not a duration: write seconds (30) or \"30s\", \"2m\", \"1h\""
                    ))
                })?;
                let factor = match unit.trim() {
                    "s" | "" => 1,
                    "m" => 60,
                    "h" => 3600,
                    _ => {
                        return Err(E::custom(format!(
                            "`{v}` is not a duration: the units are s, m and h"
                        )))
                    }
                };
                Ok(Seconds(n.saturating_mul(factor)))
            }
        }
        d.deserialize_any(V)
    }
}
