//! Hooks: executables of the project (`.kamal/hooks/`, `.odysseus/hooks/`) run on the
//! deploying machine at fixed points of a deployment, under the names Kamal gives them.
//! The machine only knows when each is due and what its exit means; running one is the
//! runtime's (through a `HookRunner`).

use std::fmt;

use crate::ids::DeploymentId;

/// The hooks odysseus runs. The names are the files' names and part of the journal:
/// never rename one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum HookName {
    /// Before the first connection to any host.
    PreConnect,
    /// Before the image is built (only when the deployment builds it).
    PreBuild,
    /// Once the image is on the hosts, before the release command and the first target.
    PreDeploy,
    /// Once every target is on the new version.
    PostDeploy,
    /// Before each batch of hosts starts its first step (`KAMAL_HOSTS`: the batch).
    PreAppBoot,
    /// Once every target of a batch is on the new version, before the next batch.
    PostAppBoot,
}

impl HookName {
    pub const ALL: [HookName; 6] = [
        HookName::PreConnect,
        HookName::PreBuild,
        HookName::PreDeploy,
        HookName::PostDeploy,
        HookName::PreAppBoot,
        HookName::PostAppBoot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HookName::PreConnect => "pre-connect",
            HookName::PreBuild => "pre-build",
            HookName::PreDeploy => "pre-deploy",
            HookName::PostDeploy => "post-deploy",
            HookName::PreAppBoot => "pre-app-boot",
            HookName::PostAppBoot => "post-app-boot",
        }
    }

    pub fn parse(name: &str) -> Option<HookName> {
        HookName::ALL.into_iter().find(|h| h.as_str() == name)
    }

    /// A gate: when it fails, what it guards does not happen (nothing changes on the
    /// hosts it names). A `post-*` hook only reports.
    pub fn is_gate(self) -> bool {
        matches!(
            self,
            HookName::PreConnect | HookName::PreBuild | HookName::PreDeploy | HookName::PreAppBoot
        )
    }
}

impl fmt::Display for HookName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One hook the runtime must run now.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct HookCall {
    pub deployment: DeploymentId,
    pub hook: HookName,
    /// The hosts it concerns (`KAMAL_HOSTS`): the batch for the app-boot hooks, every
    /// host of the plan otherwise.
    pub hosts: Vec<String>,
}

/// How a hook run ended.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct HookExit {
    /// `None`: killed by a signal, or it could not be started (`reason` says).
    pub exit_code: Option<i32>,
    /// Empty when it exited by itself; otherwise why it did not.
    pub reason: String,
    pub millis: u64,
}

impl HookExit {
    pub fn ok(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// `exited 0`, `exited 3`, `could not run: …`.
    pub fn describe(&self) -> String {
        match (self.exit_code, self.reason.is_empty()) {
            (Some(code), true) => format!("exited {code}"),
            (Some(code), false) => format!("exited {code} ({})", self.reason),
            (None, _) => self.reason.clone(),
        }
    }
}
