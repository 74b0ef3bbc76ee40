//! `odysseus trust HOST…`: the explicit opt-in that records a new server's host key, one
//! named host at a time, after the person saw its fingerprint.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;
use odysseus_executors::ssh::known_hosts::Verdict;
use odysseus_executors::ssh::{connect_reporting, scan_host_key, SshTarget};

use crate::config;
use crate::exit::{print_stdout, Exit, UsageError};
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(after_help = "\
Connects to each named host and shows the host key it offers (algorithm and SHA-256
fingerprint): compare it with the server's own (`ssh-keygen -lf
/etc/ssh/ssh_host_ed25519_key.pub` on the server). On a terminal it asks before recording
each unknown key in ssh.known_hosts; elsewhere --yes is required. Only a host with no key
recorded can be trusted: a key that matches none of those recorded for the host (whatever
its algorithm) is CHANGED and never replaced, and a revoked key is never recorded; remove
the old lines yourself if the server really changed.

Exit codes: 0 every named host is known; 2 bad usage or config (or no --yes without a
terminal); 3 a host could not be reached, its key changed, or recording was declined.")]
pub struct TrustArgs {
    /// The hosts to trust, as deploy.yml names them (`NAME` or `NAME:PORT`).
    #[arg(required = true)]
    hosts: Vec<String>,
    /// Record unknown keys without asking (for scripts: check the printed fingerprints).
    #[arg(long)]
    yes: bool,
}

pub fn run(global: &GlobalArgs, args: TrustArgs) -> anyhow::Result<Exit> {
    let config = config::load_with(
        &global.config,
        &|name| std::env::var(name).ok(),
        config::SecretsHere::MayLack,
    )
    .map_err(|e| UsageError(e.to_string()))?;
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !args.yes && !terminal {
        return Err(UsageError(
            "not on a terminal: check the fingerprints (odysseus trust shows them), then pass --yes to record them".into(),
        )
        .into());
    }
    // Only the config's own hosts: a typo must not record some other machine's key.
    // The remote builder is one of them: it is reached over SSH like the servers.
    let known: Vec<String> = config
        .hosts()
        .into_iter()
        .chain(config.build.remote_host.clone())
        .filter(|h| h != "local")
        .fold(Vec::new(), |mut all, h| {
            if !all.contains(&h) {
                all.push(h);
            }
            all
        });
    if let Some(stranger) = args.hosts.iter().find(|h| !known.contains(h)) {
        return Err(UsageError(format!(
            "{stranger} is not an SSH host of {} (its hosts: {})",
            global.config.display(),
            known.join(", ")
        ))
        .into());
    }
    let settings = config.ssh.clone();
    let runtime = super::runtime()?;
    let mut failed = false;
    for host in &args.hosts {
        let line = runtime.block_on(trust_one(host, config.ssh_port, &settings, args.yes));
        failed |= line.is_err();
        print_stdout(&format!("{host}: {}\n", line.unwrap_or_else(|e| e)))?;
    }
    Ok(if failed { Exit::Blocked } else { Exit::Ok })
}

async fn trust_one(
    host: &str,
    default_port: u16,
    settings: &odysseus_executors::ssh::SshSettings,
    yes: bool,
) -> Result<String, String> {
    let target = SshTarget::parse(host, default_port).map_err(|e| e.to_string())?;
    let scan = scan_host_key(&target, settings)
        .await
        .map_err(|e| e.to_string())?;
    let key = format!("{} {}", scan.algorithm, scan.fingerprint);
    match scan.verdict {
        Verdict::Known => return Ok(format!("already known ({key})")),
        Verdict::Unknown => {}
        // Every other verdict is a refusal: connecting says exactly why.
        _ => {
            return Err(match connect_reporting(&target, settings).await {
                Err(e) => e.to_string(),
                Ok(_) => format!("{key} was refused, then accepted: try again"),
            })
        }
    }
    if !yes && !confirm(host, &key) {
        return Err(format!("not recorded ({key})"));
    }
    // Recorded only if the server still offers the key the person saw.
    let mut recording = settings.clone();
    recording.trust_fingerprint = Some(scan.fingerprint.clone());
    match connect_reporting(&target, &recording).await {
        Ok((_, Some(_))) => Ok(format!(
            "recorded {key} in {}",
            settings.known_hosts.display()
        )),
        Ok((_, None)) => Ok(format!("already known ({key})")),
        Err(e) => Err(e.to_string()),
    }
}

fn confirm(host: &str, key: &str) -> bool {
    eprint!("{host} offers {key}. Record it as this host's key? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok()
        && matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}
