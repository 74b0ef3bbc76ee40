//! `odysseus trust`: the explicit opt-in that records a new server's host key.

use clap::Args;
use odysseus_executors::ssh::connect_reporting;
use odysseus_executors::ssh::SshTarget;

use crate::config;
use crate::exit::{print_stdout, Exit, UsageError};
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(after_help = "\
Connects to each host (all SSH hosts of the config when none is named) and records its
host key in ssh.known_hosts when it is not there yet, printing the fingerprint so you can
compare it with the server's own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on
the server). A key that differs from the recorded one is never replaced: remove the old
line yourself if the server really changed.

Exit codes: 0 every host is known; 2 bad usage or config; 3 a host could not be reached
or its key changed.")]
pub struct TrustArgs {
    /// Hosts to trust (default: every SSH host of the config).
    hosts: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: TrustArgs) -> anyhow::Result<Exit> {
    let config = config::load(&global.config, &|name| std::env::var(name).ok())
        .map_err(|e| UsageError(e.to_string()))?;
    let hosts: Vec<String> = if args.hosts.is_empty() {
        config
            .hosts()
            .into_iter()
            .filter(|h| h != "local")
            .collect()
    } else {
        args.hosts
    };
    let mut settings = config.ssh.clone();
    settings.trust_unknown = true;
    let runtime = super::runtime()?;
    let mut out = String::new();
    let mut failed = false;
    runtime.block_on(async {
        for host in &hosts {
            let target = match SshTarget::parse(host, config.ssh_port) {
                Ok(t) => t,
                Err(e) => {
                    out.push_str(&format!("{host}: {e}\n"));
                    failed = true;
                    continue;
                }
            };
            match connect_reporting(&target, &settings).await {
                Ok((_, Some(fingerprint))) => out.push_str(&format!(
                    "{host}: recorded {fingerprint} in {}\n",
                    settings.known_hosts.display()
                )),
                Ok((_, None)) => out.push_str(&format!("{host}: already known\n")),
                Err(e) => {
                    out.push_str(&format!("{host}: {e}\n"));
                    failed = true;
                }
            }
        }
    });
    print_stdout(&out)?;
    Ok(if failed { Exit::Blocked } else { Exit::Ok })
}
