//! Registry-less image delivery: export the image from this machine's engine and load it
//! into each host's engine through its tunnel, skipping hosts that already have the same
//! image id.

use std::time::Instant;

use futures_util::{StreamExt, TryStreamExt};
use odysseus_engine::runtime::ExecError;

use super::engine::Engine;
use super::executor::{local_socket, DockerExecutor};

/// How this machine's engine is named in messages (and told apart from a remote builder).
pub const THIS_MACHINE: &str = "this machine";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The host already had the same image id.
    AlreadyPresent,
    /// This machine is the host (`local`): nothing to send.
    Local,
    Sent {
        bytes: u64,
        millis: u64,
    },
}

impl DockerExecutor {
    /// Sends `image` (repository:tag) from this machine's engine to every host lacking it.
    pub async fn push_image(&self, image: &str) -> Result<Vec<(String, PushOutcome)>, ExecError> {
        let source = Engine::connect(THIS_MACHINE, &local_socket()?).await?;
        self.push_image_from(&source, image).await
    }

    /// Sends `image` from `source` (this machine's engine, or a remote builder's) to every
    /// host lacking that image id. A host that is this machine counts as having it only
    /// when `source` is this machine too.
    pub async fn push_image_from(
        &self,
        source: &Engine,
        image: &str,
    ) -> Result<Vec<(String, PushOutcome)>, ExecError> {
        let Some(id) = source.image_id(image).await? else {
            return Err(ExecError::Permanent(format!(
                "image {image} is not on {}'s Docker engine: build or pull it there first",
                source.host
            )));
        };
        let mut outcomes = Vec::new();
        for (host, handle) in self.hosts_sorted() {
            if matches!(handle.access, super::Access::Local) && source.host == THIS_MACHINE {
                outcomes.push((host.clone(), PushOutcome::Local));
                continue;
            }
            if handle.engine.image_id(image).await?.as_deref() == Some(id.as_str()) {
                outcomes.push((host.clone(), PushOutcome::AlreadyPresent));
                continue;
            }
            let started = Instant::now();
            let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let counter = counted.clone();
            let export = source.export(image).inspect_ok(move |chunk| {
                counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
            });
            handle
                .engine
                .load(export)
                .await
                .map_err(|e| ExecError::Retryable(format!("{host}: loading {image}: {e}")))?;
            if handle.engine.image_id(image).await?.as_deref() != Some(id.as_str()) {
                return Err(ExecError::Retryable(format!(
                    "{host}: {image} did not arrive intact"
                )));
            }
            outcomes.push((
                host.clone(),
                PushOutcome::Sent {
                    bytes: counted.load(std::sync::atomic::Ordering::Relaxed),
                    millis: started.elapsed().as_millis() as u64,
                },
            ));
        }
        Ok(outcomes)
    }
}

impl Engine {
    pub async fn image_id(&self, image: &str) -> Result<Option<String>, ExecError> {
        match self.docker().inspect_image(image).await {
            Ok(i) => Ok(i.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(ExecError::Retryable(format!(
                "inspecting image {image}: {e}"
            ))),
        }
    }

    /// The image as a `docker save` tar stream.
    pub fn export(
        &self,
        image: &str,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, bollard::errors::Error>> + Send + 'static
    {
        self.docker().export_image(image)
    }

    /// `docker load` of a tar stream.
    pub async fn load<S>(&self, tar: S) -> Result<(), String>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes, bollard::errors::Error>>
            + Send
            + 'static,
    {
        let options = bollard::query_parameters::ImportImageOptions {
            quiet: true,
            ..Default::default()
        };
        let mut progress = self.docker().import_image_stream(options, tar, None);
        while let Some(item) = progress.next().await {
            item.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
