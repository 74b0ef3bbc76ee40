//! The output of the container a role serves on a host, for `odysseus logs`.

use std::io::Write;

use futures_util::StreamExt;
use odysseus_engine::runtime::ExecError;

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
        let options = bollard::query_parameters::LogsOptions {
            follow,
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let mut stream = h.engine.docker().logs(&name, Some(options));
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
                Err(e) => return Err(ExecError::Retryable(format!("logs of {name}: {e}"))),
            }
        }
        Ok(name)
    }
}
