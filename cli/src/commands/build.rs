//! `odysseus build`: build `<image>:<version>` from deploy.yml's `builder`, on this
//! machine's Docker engine or a remote builder's, and (`--push`) push it to the registry.
//! `deploy` uses the same pieces as the first phase of a deployment.

use std::collections::BTreeMap;
use std::time::Instant;

use clap::Args;
use odysseus_engine::runtime::ExecError;
use odysseus_executors::docker::engine::Engine;
use odysseus_executors::docker::{local_socket, DockerExecutor, THIS_MACHINE};

use crate::config::{self, Config};
use crate::exit::{Exit, UsageError};
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(after_help = "\
The image is `<image>:<version>`, the version the commit deploy.yml's repository is at
(or --image TAG). The context (builder.context, default the folder of deploy.yml) goes to
the engine as a tar that honours .dockerignore; builder.secrets are passed as build args
and never printed.

Exit codes: 0 built (and pushed); 1 the build failed; 2 bad usage or config; 3 the
builder or the registry could not be reached.")]
pub struct BuildArgs {
    /// The tag to build: the image is `<image>:<TAG>` (default: from git).
    #[arg(long, value_name = "TAG")]
    image: Option<String>,
    /// Push the image to its registry afterwards (as `builder.push: true` does).
    #[arg(long)]
    push: bool,
}

/// The engine a build runs on, and the connection that reaches it.
pub enum BuilderEngine {
    Local(Engine),
    /// Kept whole: the SSH connection behind the engine lives as long as it.
    Remote(Box<DockerExecutor>, String),
}

impl BuilderEngine {
    pub async fn connect(config: &Config) -> Result<Self, ExecError> {
        match &config.build.remote_host {
            None => Ok(BuilderEngine::Local(
                Engine::connect(THIS_MACHINE, &local_socket()?).await?,
            )),
            Some(host) => {
                let executor = DockerExecutor::connect(
                    config.spec.clone(),
                    std::slice::from_ref(host),
                    &config.ssh,
                    config.ssh_port,
                )
                .await?;
                Ok(BuilderEngine::Remote(Box::new(executor), host.clone()))
            }
        }
    }

    pub fn engine(&self) -> &Engine {
        match self {
            BuilderEngine::Local(e) => e,
            BuilderEngine::Remote(executor, host) => {
                &executor
                    .host(host)
                    .expect("connect() keeps the builder's host")
                    .engine
            }
        }
    }
}

/// A finished build.
pub struct Built {
    pub image_id: String,
    pub millis: u64,
}

/// Builds `image` (`repo:version`) with the config's builder, printing the engine's
/// output as it comes. `commit` labels the image when the version came from git.
pub async fn build(
    config: &Config,
    builder: &BuilderEngine,
    image: &str,
    commit: Option<&str>,
) -> Result<Built, ExecError> {
    let mut labels = BTreeMap::new();
    labels.insert("odysseus.service".to_string(), config.service.clone());
    if let Some(c) = commit {
        labels.insert("odysseus.git-commit".to_string(), c.to_string());
    }
    let engine = builder.engine();
    let shown = |p: &std::path::Path| {
        std::fs::canonicalize(p)
            .unwrap_or_else(|_| p.to_path_buf())
            .display()
            .to_string()
    };
    eprintln!(
        "Building {image} on {} from {} ({})",
        engine.host,
        shown(&config.build.context),
        shown(&config.build.dockerfile)
    );
    let started = Instant::now();
    let mut print = |line: &str| eprintln!("  | {line}");
    let image_id = engine
        .build(&config.build, image, &labels, &mut print)
        .await?;
    let millis = started.elapsed().as_millis() as u64;
    Ok(Built { image_id, millis })
}

impl Built {
    /// Said once the build is recorded (a deploy journals it first).
    pub fn announce(&self, image: &str) {
        eprintln!(
            "Built {image} ({}) in {:.1}s",
            short_id(&self.image_id),
            self.millis as f64 / 1000.0
        );
    }
}

/// Gets the built image to the hosts: pushed to the registry (`push`), or sent from the
/// builder's engine to each host lacking it.
pub async fn deliver(
    config: &Config,
    builder: &BuilderEngine,
    executor: &DockerExecutor,
    image: &str,
    push: bool,
) -> Result<(), ExecError> {
    if push {
        builder
            .engine()
            .push_to_registry(image, config.spec.registry.as_ref())
            .await?;
        eprintln!("Pushed {image} to its registry");
        return Ok(());
    }
    for (host, outcome) in executor.push_image_from(builder.engine(), image).await? {
        if let odysseus_executors::docker::PushOutcome::Sent { bytes, millis } = outcome {
            eprintln!(
                "[{host}] sent {image} ({:.1} MB in {:.1}s)",
                bytes as f64 / 1e6,
                millis as f64 / 1000.0
            );
        }
    }
    Ok(())
}

pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

pub fn run(global: &GlobalArgs, args: BuildArgs) -> anyhow::Result<Exit> {
    let mut config = config::load(&global.config, &|name| std::env::var(name).ok())
        .map_err(|e| UsageError(e.to_string()))?;
    config
        .build
        .never_send
        .push(crate::state::state_dir(global));
    let tag = crate::version::choose(
        args.image.as_deref(),
        config.default_tag.as_deref(),
        &global.config,
    )?
    .ok_or_else(|| UsageError(crate::version::none_message(&global.config)))?;
    config.check_buildable().map_err(UsageError)?;
    let image = format!("{}:{tag}", config.image);
    let commit = crate::version::head_id(&global.config).filter(|c| c.starts_with(&tag));
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let builder = match BuilderEngine::connect(&config).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("odysseus: {e}");
                return Ok(Exit::Blocked);
            }
        };
        match build(&config, &builder, &image, commit.as_deref()).await {
            Ok(built) => built.announce(&image),
            Err(e) => {
                eprintln!("odysseus: {e}");
                return Ok(match e {
                    ExecError::Permanent(_) => Exit::Failed,
                    _ => Exit::Blocked,
                });
            }
        }
        if args.push || config.build.push {
            if let Err(e) = builder
                .engine()
                .push_to_registry(&image, config.spec.registry.as_ref())
                .await
            {
                eprintln!("odysseus: {e}");
                return Ok(Exit::Blocked);
            }
            eprintln!("Pushed {image} to its registry");
        }
        Ok(Exit::Ok)
    })
}
