//! Where secret values come from: the environment of `odysseus` first (an explicit
//! override), then `secrets_file`, read only when a name is missing from the
//! environment. Shared by `env.secret`, `registry` and every dependency's `env.secret`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::super::problems::Problems;
use super::super::raw::{RawEnv, Scalar, StringOrList};
use super::super::secrets_file;
use super::super::values::check_env_name;

pub(super) struct SecretSource<'a> {
    environment: &'a dyn Fn(&str) -> Option<String>,
    /// As written in deploy.yml, and resolved.
    file: Option<(String, PathBuf)>,
    read: Option<BTreeMap<String, String>>,
    /// Every (name, value) handed out: what odysseus must never print or record.
    pub handed: Vec<(String, String)>,
    /// Secrets may lack a value here (`validate`): what is missing is said, not refused.
    lenient: bool,
    /// (key, why) for each secret this machine cannot give, in lenient mode.
    pub unavailable: Vec<(String, String)>,
}

impl<'a> SecretSource<'a> {
    pub fn new(
        environment: &'a dyn Fn(&str) -> Option<String>,
        file: Option<(String, PathBuf)>,
        lenient: bool,
    ) -> Self {
        SecretSource {
            environment,
            file,
            read: None,
            handed: Vec::new(),
            lenient,
            unavailable: Vec::new(),
        }
    }

    pub fn get(&mut self, name: &str, problems: &mut Problems) -> Option<String> {
        let value = self.lookup(name, problems)?;
        if !self.handed.iter().any(|(n, v)| n == name && *v == value) {
            self.handed.push((name.to_string(), value.clone()));
        }
        Some(value)
    }

    fn lookup(&mut self, name: &str, problems: &mut Problems) -> Option<String> {
        if let Some(value) = (self.environment)(name) {
            return Some(value);
        }
        let (shown, path) = self.file.clone()?;
        if self.read.is_none() {
            let key = super::super::encrypted::master_key(self.environment);
            // What this machine lacks (the file, or the key to an encrypted one) is the
            // environment's, not the file's: lenient mode says so and goes on.
            let locked = key.is_none()
                && std::fs::read_to_string(&path)
                    .is_ok_and(|t| super::super::encrypted::looks_encrypted(&t));
            let lacking = if !path.exists() {
                Some(format!("{shown} is not on this machine"))
            } else if locked {
                Some(format!(
                    "{shown} is encrypted and {} is not set here",
                    super::super::encrypted::MASTER_KEY_VAR
                ))
            } else {
                None
            };
            self.read = Some(match lacking {
                Some(why) if self.lenient => {
                    self.unavailable.push((
                        "secrets_file".into(),
                        format!("{why}: the secrets it holds are not checked (deploy needs them)"),
                    ));
                    BTreeMap::new()
                }
                _ => secrets_file::read(&path, key.as_deref()).unwrap_or_else(|e| {
                    problems.push("secrets_file", e.to_string());
                    BTreeMap::new()
                }),
            });
        }
        self.read.as_ref()?.get(name).cloned()
    }

    /// A secret no source has: refused, or (lenient) said once as not available here.
    pub fn report_missing(&mut self, key: &str, name: &str, problems: &mut Problems) {
        if !self.lenient {
            problems.push(key, self.missing(name));
            return;
        }
        let why = format!(
            "{name} has no value on this machine; deploy needs it from the environment{}",
            match &self.file {
                Some((f, _)) => format!(" or {f}"),
                None => " or a secrets_file".into(),
            }
        );
        if !self.unavailable.iter().any(|(_, w)| *w == why) {
            self.unavailable.push((key.to_string(), why));
        }
    }

    /// The secrets file's path on this machine, if deploy.yml names one.
    pub fn file_path(&self) -> Option<PathBuf> {
        self.file.as_ref().map(|(_, p)| p.clone())
    }

    /// The message for a secret no source has.
    pub fn missing(&self, name: &str) -> String {
        format!(
            "{name} is not set; export it in the environment that runs odysseus{}",
            match &self.file {
                Some((f, _)) => format!(" or add it to {f}"),
                None => " or name a secrets_file that has it".into(),
            }
        )
    }

    /// An `env:` section's values: clear ones as written, secret ones resolved (a
    /// missing one is a problem at `key.secret`).
    pub fn env(
        &mut self,
        env: Option<&RawEnv>,
        key: &str,
        problems: &mut Problems,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(e) = env else {
            return out;
        };
        for (k, Scalar(v)) in e.clear.iter().flatten() {
            if let Err(why) = check_env_name(k) {
                problems.push(format!("{key}.clear"), why);
            }
            out.insert(k.clone(), v.clone());
        }
        for name in e.secret.iter().flatten() {
            if let Err(why) = check_env_name(name) {
                problems.push(format!("{key}.secret"), why);
                continue;
            }
            if e.clear.iter().flatten().any(|(k, _)| k == name) {
                problems.push(
                    format!("{key}.secret"),
                    format!("{name} is in both `clear` and `secret`: keep one"),
                );
            }
            match self.get(name, problems) {
                Some(value) => {
                    out.insert(name.clone(), value);
                }
                None => self.report_missing(&format!("{key}.secret"), name, problems),
            }
        }
        out
    }

    /// `registry.username` / `.password`: a literal value, or `[NAME]` naming a secret.
    pub fn registry_value(
        &mut self,
        key: &str,
        value: &Option<StringOrList>,
        problems: &mut Problems,
    ) -> Option<String> {
        match value {
            None => None,
            Some(StringOrList::One(s)) => Some(s.clone()),
            Some(StringOrList::Many(names)) if names.len() == 1 => {
                let name = &names[0];
                let found = self.get(name, problems);
                if found.is_none() {
                    self.report_missing(&format!("registry.{key}"), name, problems);
                }
                found
            }
            Some(StringOrList::Many(_)) => {
                problems.push(
                    format!("registry.{key}"),
                    "a value, or a list of exactly one secret name like [REGISTRY_PASSWORD]",
                );
                None
            }
        }
    }
}
