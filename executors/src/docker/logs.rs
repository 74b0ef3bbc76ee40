//! What a container printed, for `odysseus logs` (a role's serving container) and
//! `odysseus dependency logs`.

use std::io::Write;

use futures_util::StreamExt;
use odysseus_engine::runtime::ExecError;

use super::engine::Engine;
use super::executor::DockerExecutor;

impl DockerExecutor {
    /// Prints the last `lines` lines of the role's serving container; with `follow`,
    /// keeps printing until the container stops or the process is interrupted.
    pub async fn print_logs(
        &self,
        host: &str,
        role: &str,
        lines: usize,
        follow: bool,
    ) -> Result<String, ExecError> {
        let h = self.host(host)?;
        let Some((_, name, _)) = self.serving_container(host, role).await? else {
            return Err(ExecError::Permanent(format!(
                "{role} runs nothing on {host}"
            )));
        };
        print_container_logs(&h.engine, &name, lines, follow).await?;
        Ok(name)
    }
}

/// Prints the last `lines` lines `name` printed (stdout to stdout, stderr to stderr);
/// with `follow`, keeps printing until the container stops.
pub async fn print_container_logs(
    engine: &Engine,
    name: &str,
    lines: usize,
    follow: bool,
) -> Result<(), ExecError> {
    let options = bollard::query_parameters::LogsOptions {
        follow,
        stdout: true,
        stderr: true,
        tail: lines.to_string(),
        ..Default::default()
    };
    let mut stream = engine.docker().logs(name, Some(options));
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bollard::container::LogOutput::StdErr { message }) => {
                let _ = std::io::stderr().write_all(&message);
            }
            Ok(other) => {
                let mut out = std::io::stdout().lock();
                if out
                    .write_all(&other.into_bytes())
                    .and_then(|_| out.flush())
                    .is_err()
                {
                    break; // the reader went away (`| head`): not an error
                }
            }
            Err(e) if super::engine::is_not_found(&e) => {
                return Err(ExecError::Permanent(format!("{name} does not exist")))
            }
            Err(e) => return Err(ExecError::Retryable(format!("logs of {name}: {e}"))),
        }
    }
    Ok(())
}
