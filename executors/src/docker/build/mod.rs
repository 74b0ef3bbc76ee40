//! Building `<image>:<version>` on a Docker engine through its API (`POST /build`): the
//! context streamed as a tar that honours `.dockerignore`, the engine's output handed to
//! the caller line by line, and on failure the step that failed with its last lines.

mod context;
mod dockerignore;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;

use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;
use odysseus_engine::runtime::ExecError;

pub use context::Context;

use super::engine::Engine;

/// deploy.yml's `builder`, resolved: paths on this machine, secret values in `args`.
#[derive(Clone, Debug, PartialEq)]
pub struct BuildSpec {
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    /// Every build arg, clear and secret (the names of secret ones in `secret_args`).
    pub args: BTreeMap<String, String>,
    pub secret_args: Vec<String>,
    /// `linux/amd64` and the like; more than one needs buildx and is refused.
    pub platforms: Vec<String>,
    pub no_cache: bool,
    pub target: Option<String>,
    /// `strategy: remote`: the host whose engine builds (reached like the servers).
    pub remote_host: Option<String>,
    /// Push the result to the registry instead of sending it to each server.
    pub push: bool,
    /// Paths on this machine never sent in the context (the state dir, the secrets file).
    pub never_send: Vec<PathBuf>,
}

impl BuildSpec {
    /// Why this spec cannot be built here, when it names several platforms.
    pub fn several_platforms(&self) -> Option<String> {
        let many = &self.platforms;
        (many.len() > 1).then(|| {
            format!(
                "builder.arch names {} platforms ({}): one image for several platforms needs BuildKit's buildx, \
                 which odysseus's build through the engine's API cannot drive, and odysseus never builds only one of them. \
                 Build and push them with `docker buildx build --platform {} -t IMAGE:VERSION --push .`, then deploy with \
                 --image VERSION; or name one arch",
                many.len(),
                many.join(", "),
                many.join(",")
            )
        })
    }

    /// Where the build runs, for messages and the journal.
    pub fn builder_name(&self) -> String {
        match &self.remote_host {
            Some(h) => format!("remote {h}"),
            None => "local".into(),
        }
    }
}

/// How many of the engine's last output lines a failure shows.
const LAST_LINES: usize = 15;

impl Engine {
    /// Builds `tag` (`repository:version`) from `spec`, with `labels` on the image. Returns
    /// the image id. `line` gets every line of the engine's output as it comes.
    pub async fn build(
        &self,
        spec: &BuildSpec,
        tag: &str,
        labels: &BTreeMap<String, String>,
        line: &mut (dyn FnMut(&str) + Send),
    ) -> Result<String, ExecError> {
        let platform = self.platform_for(spec).await?;
        let context = Context::prepare(&spec.context, &spec.dockerfile, &spec.never_send)
            .map_err(ExecError::Permanent)?;
        let options = BuildImageOptions {
            dockerfile: context.dockerfile_name.clone(),
            t: Some(tag.to_string()),
            nocache: spec.no_cache,
            rm: true,
            forcerm: true,
            buildargs: Some(
                spec.args
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<HashMap<_, _>>(),
            ),
            labels: Some(labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            platform: platform.unwrap_or_default(),
            target: spec.target.clone().unwrap_or_default(),
            ..Default::default()
        };
        let mut chunks = context.stream();
        let body = futures_util::stream::poll_fn(move |cx| chunks.poll_recv(cx));
        let mut output =
            self.docker()
                .build_image(options, None, Some(bollard::body_try_stream(body)));
        let mut last: VecDeque<String> = VecDeque::new();
        let mut step: Option<String> = None;
        // The engine's chunks are not lines: a line (and a secret in it) may be split
        // across them. Only whole lines are shown, filtered and kept.
        let mut pending = String::new();
        let mut take = |text: &str,
                        pending: &mut String,
                        flush: bool,
                        last: &mut VecDeque<String>,
                        step: &mut Option<String>| {
            pending.push_str(text);
            let mut lines: Vec<String> = Vec::new();
            while let Some(at) = pending.find('\n') {
                lines.push(pending[..at].to_string());
                pending.drain(..=at);
            }
            if flush && !pending.is_empty() {
                lines.push(std::mem::take(pending));
            }
            for l in lines {
                let l = crate::redact::hide_known(l.trim_end());
                if l.is_empty() {
                    continue;
                }
                if l.starts_with("Step ") {
                    *step = Some(l.clone());
                }
                if last.len() == LAST_LINES {
                    last.pop_front();
                }
                last.push_back(l.clone());
                line(&l);
            }
        };
        while let Some(item) = output.next().await {
            let info = match item {
                Ok(info) => info,
                // The engine's own words, without bollard's wrapping.
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    take("", &mut pending, true, &mut last, &mut step);
                    return Err(self.failed(step.as_deref(), &last, &error));
                }
                // The engine refused the build itself (a Dockerfile it cannot parse, a
                // target stage that does not exist): the build's failure, not the link's.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code,
                    message,
                }) if (400..500).contains(&status_code) => {
                    return Err(self.failed(step.as_deref(), &last, &message))
                }
                // The connection to the engine broke: the build may go better again.
                Err(e) => {
                    return Err(ExecError::Retryable(format!(
                        "the image build on {}: {e}",
                        self.host
                    )))
                }
            };
            if let Some(detail) = info.error_detail.and_then(|d| d.message) {
                take("", &mut pending, true, &mut last, &mut step);
                return Err(self.failed(step.as_deref(), &last, &detail));
            }
            if let Some(text) = info.stream.or(info.status) {
                take(&text, &mut pending, false, &mut last, &mut step);
            }
        }
        take("", &mut pending, true, &mut last, &mut step);
        self.image_id(tag).await?.ok_or_else(|| {
            ExecError::Permanent(format!(
                "the build on {} ended without an image tagged {tag}",
                self.host
            ))
        })
    }

    /// The platform to ask for: none when the engine's own is the one wanted (the
    /// engine's default), one when it differs; several need buildx, which this API
    /// build cannot drive.
    async fn platform_for(&self, spec: &BuildSpec) -> Result<Option<String>, ExecError> {
        match spec.platforms.as_slice() {
            [] => Ok(None),
            [one] => {
                let version = self.docker().version().await.map_err(|e| {
                    ExecError::Retryable(format!("{}: Docker engine version: {e}", self.host))
                })?;
                let own = format!("linux/{}", version.arch.unwrap_or_default());
                Ok((one != &own).then(|| one.clone()))
            }
            _ => Err(ExecError::Permanent(
                spec.several_platforms().unwrap_or_default(),
            )),
        }
    }

    fn failed(&self, step: Option<&str>, last: &VecDeque<String>, error: &str) -> ExecError {
        let mut text = format!("the image build on {} failed", self.host);
        if let Some(step) = step {
            text.push_str(&format!(" at {step}"));
        }
        text.push_str(&format!(": {}", error.trim()));
        if !last.is_empty() {
            text.push_str("\nits last lines:");
            for l in last {
                text.push_str("\n  | ");
                text.push_str(l);
            }
        }
        // A build's output may print a secret build arg; the journal keeps this text.
        ExecError::Permanent(crate::redact::hide_known(&text))
    }

    /// Pushes `image` to its registry, with `auth` when the image lives there.
    pub async fn push_to_registry(
        &self,
        image: &str,
        auth: Option<&super::spec::RegistryAuth>,
    ) -> Result<(), ExecError> {
        let (repo, tag) = match image.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, tag),
            _ => (image, "latest"),
        };
        let credentials = auth
            .filter(|a| a.covers(image))
            .map(|a| bollard::auth::DockerCredentials {
                username: Some(a.username.clone()),
                password: Some(a.password.clone()),
                serveraddress: a.server.clone(),
                ..Default::default()
            })
            // The engine refuses a push without an auth header, even to a registry
            // that needs none: an empty login is what the Docker CLI sends.
            .or_else(|| Some(Default::default()));
        let options = bollard::query_parameters::PushImageOptions {
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let mut push = self.docker().push_image(repo, Some(options), credentials);
        while let Some(item) = push.next().await {
            let failure = match item {
                Ok(info) => info.error_detail.and_then(|d| d.message),
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = failure {
                return Err(ExecError::Retryable(format!(
                    "pushing {image} from {} to its registry: {why}",
                    self.host
                )));
            }
        }
        Ok(())
    }
}
