//! What the real executors need to know about a service, from the validated config.
//! Secret values live here only in memory: they are passed to the Docker API as env and
//! never written to the journal or to a file.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExpectStatus {
    /// Any 2xx.
    Any2xx,
    Exact(u16),
    /// `2xx`, `3xx`: the first digit.
    Class(u8),
}

impl ExpectStatus {
    /// As a container label records it (`any-2xx`, `204`, `3xx`).
    pub fn to_label(&self) -> String {
        match self {
            ExpectStatus::Any2xx => "any-2xx".into(),
            ExpectStatus::Exact(s) => s.to_string(),
            ExpectStatus::Class(c) => format!("{c}xx"),
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        if label == "any-2xx" {
            return Some(ExpectStatus::Any2xx);
        }
        if let Some(class) = label.strip_suffix("xx") {
            return class.parse().ok().map(ExpectStatus::Class);
        }
        label.parse().ok().map(ExpectStatus::Exact)
    }

    pub fn accepts(&self, status: u16) -> bool {
        match self {
            ExpectStatus::Any2xx => (200..300).contains(&status),
            ExpectStatus::Exact(s) => *s == status,
            ExpectStatus::Class(c) => status / 100 == u16::from(*c),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCheck {
    pub path: String,
    pub interval_s: u64,
    pub timeout_s: u64,
    pub expect: ExpectStatus,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdCheck {
    pub cmd: String,
    pub interval_s: u64,
    pub timeout_s: u64,
    pub retries: u32,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resources {
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RoleSpec {
    pub name: String,
    pub web: bool,
    pub cmd: Option<Vec<String>>,
    /// `source:target[:mode]`; named sources are already namespaced `<service>-<name>`.
    pub volumes: Vec<String>,
    pub resources: Resources,
    /// A container health command from the config (becomes the Docker HEALTHCHECK).
    pub healthcheck: Option<CmdCheck>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySpec {
    pub hosts: Vec<String>,
    pub app_port: u16,
    pub ssl: bool,
    pub ssl_email: Option<String>,
    pub healthcheck: Option<HttpCheck>,
    pub image: String,
    pub http_port: u16,
    pub https_port: u16,
    /// The ACME directory URL (`proxy.acme_ca`); None is Caddy's default CAs.
    pub acme_ca: Option<String>,
    /// The PEM text of the root to trust for `acme_ca` (`proxy.acme_ca_root`, read from
    /// this machine), placed on Caddy's data volume.
    pub acme_ca_root: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceSpec {
    pub service: String,
    pub dependencies: Vec<DependencySpec>,
    /// Credentials for pulls from a private registry (deploy.yml's `registry`).
    pub registry: Option<RegistryAuth>,
    pub roles: Vec<RoleSpec>,
    pub proxy: Option<ProxySpec>,
    /// Clear env and resolved secrets together, in the order given.
    pub env: BTreeMap<String, String>,
    pub network_subnet: Option<String>,
    /// (name, value) of every secret the config resolved (env, dependencies, registry
    /// password): redacted from anything odysseus records or prints.
    pub secret_values: Vec<(String, String)>,
    /// The full commit deploy.yml's git repository is at, if any: a container whose
    /// version is that commit's short id is labelled with it (`odysseus.git-commit`).
    pub git_commit: Option<String>,
}

/// A dependency (deploy.yml's `dependencies`, once `accessories`): one container per host
/// named `<service>-<name>`, on the `odysseus` network under that name.
#[derive(Clone, Debug, PartialEq)]
pub struct DependencySpec {
    pub name: String,
    /// The full image reference, tag included (`postgres:16`).
    pub image: String,
    pub hosts: Vec<String>,
    pub cmd: Option<Vec<String>>,
    /// (container port, host address, host port).
    pub ports: Vec<(u16, String, u16)>,
    /// Binds, named volumes already namespaced `<service>-<name>`.
    pub volumes: Vec<String>,
    /// Clear env and resolved secrets.
    pub env: BTreeMap<String, String>,
    pub healthcheck: Option<CmdCheck>,
}

/// A registry login. Used only for pulls of images that live on `server`; never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    /// `ghcr.io`, `registry.example.com:5000`; None means Docker Hub.
    pub server: Option<String>,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl RegistryAuth {
    /// Whether `image` (`[registry/]repo[:tag]`) is pulled from this registry.
    pub fn covers(&self, image: &str) -> bool {
        let hub = |s: &str| matches!(s, "docker.io" | "index.docker.io" | "registry-1.docker.io");
        let first = image.split('/').next().unwrap_or_default();
        let registry = if image.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost")
        {
            Some(first)
        } else {
            None
        };
        match (self.server.as_deref(), registry) {
            (None, None) => true,
            (None, Some(r)) | (Some(r), None) => hub(r),
            (Some(s), Some(r)) => s == r || (hub(s) && hub(r)),
        }
    }
}

impl ServiceSpec {
    pub fn role(&self, name: &str) -> Option<&RoleSpec> {
        self.roles.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::RegistryAuth;

    fn auth(server: Option<&str>) -> RegistryAuth {
        RegistryAuth {
            server: server.map(str::to_string),
            username: "u".into(),
            password: "p".into(),
        }
    }

    #[test]
    fn a_login_covers_only_images_on_its_registry() {
        let ghcr = auth(Some("ghcr.io"));
        assert!(ghcr.covers("ghcr.io/team/app:v1"));
        assert!(!ghcr.covers("registry.example.com/team/app"));
        assert!(!ghcr.covers("caddy:2-alpine"));
        let lan = auth(Some("198.51.100.1:5001"));
        assert!(lan.covers("198.51.100.1:5001/odysseus-demo:v1"));
        assert!(!lan.covers("198.51.100.1:5000/odysseus-demo:v1"));
        let hub = auth(None);
        assert!(
            hub.covers("team/app:v1") && hub.covers("caddy") && hub.covers("docker.io/team/app")
        );
        assert!(!hub.covers("ghcr.io/team/app"));
        assert!(auth(Some("docker.io")).covers("team/app"));
        assert!(auth(Some("localhost")).covers("localhost/app"));
        assert!(
            format!("{ghcr:?}").contains("<redacted>") && !format!("{ghcr:?}").contains("\"p\"")
        );
    }
}
