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
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceSpec {
    pub service: String,
    pub roles: Vec<RoleSpec>,
    pub proxy: Option<ProxySpec>,
    /// Clear env and resolved secrets together, in the order given.
    pub env: BTreeMap<String, String>,
    pub network_subnet: Option<String>,
}

impl ServiceSpec {
    pub fn role(&self, name: &str) -> Option<&RoleSpec> {
        self.roles.iter().find(|r| r.name == name)
    }
}
