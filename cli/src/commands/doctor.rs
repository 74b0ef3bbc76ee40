//! `odysseus doctor [HOST…]`: read-only checks of every host a deploy would touch — SSH
//! login and host key, the Docker engine and the deploy user's access to it, free disk,
//! the deploy lock's directory, Caddy and its ports, the clock — one line per check.

use std::io::IsTerminal;

use clap::Args;
use odysseus_executors::doctor::{examine, Check, Verdict};
use serde_json::json;

use crate::config;
use crate::exit::{print_stdout, Exit, UsageError};
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(after_help = "\
Per host, in order: ssh (login, host key against known_hosts), docker access (the deploy
user may use the engine's socket), docker engine (answers; its version), disk (free space
where the engine keeps images), lock (the service's deploy lock can be read; who holds
it), caddy (running with deploy.yml's ports and its admin API answering, or the ports
free for the first deploy), clock (the host's against this machine's). A check that needs
a failed one is skipped. Nothing is changed anywhere.

Exit codes: 0 no check failed (warnings allowed); 1 a check failed; 2 bad usage or config.")]
pub struct DoctorArgs {
    /// Hosts of the config (default: all).
    hosts: Vec<String>,
    /// One JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(global: &GlobalArgs, args: DoctorArgs) -> anyhow::Result<Exit> {
    let config = config::load_with(
        &global.config,
        &|name| std::env::var(name).ok(),
        config::SecretsHere::MayLack,
    )
    .map_err(|e| UsageError(e.to_string()))?;
    let hosts = super::hosts_of(&config, &global.config, &args.hosts)?;
    let runtime = super::runtime()?;
    let results: Vec<(String, Vec<Check>)> = runtime.block_on(async {
        let mut results = Vec::new();
        for host in hosts {
            let checks = examine(&config.spec, &host, &config.ssh, config.ssh_port).await;
            results.push((host, checks));
        }
        results
    });
    let failed = results
        .iter()
        .any(|(_, checks)| checks.iter().any(|c| c.verdict == Verdict::Fail));
    let text = if args.json {
        let doc = json!({
            "service": config.service,
            "ok": !failed,
            "hosts": results.iter().map(|(host, checks)| json!({
                "host": host,
                "checks": checks,
            })).collect::<Vec<_>>(),
        });
        format!("{}\n", serde_json::to_string_pretty(&doc)?)
    } else {
        let colour = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let mut text = String::new();
        for (host, checks) in &results {
            text.push_str(&format!("{host}\n"));
            for c in checks {
                text.push_str(&format!(
                    "  {}  {:<14} {}\n",
                    word(c.verdict, colour),
                    c.check,
                    c.detail
                ));
            }
        }
        text
    };
    print_stdout(&text)?;
    Ok(if failed { Exit::Failed } else { Exit::Ok })
}

/// The verdict as a fixed-width word, coloured on a terminal unless NO_COLOR is set.
fn word(v: Verdict, colour: bool) -> String {
    let (w, code) = match v {
        Verdict::Ok => ("ok  ", "32"),
        Verdict::Warn => ("warn", "33"),
        Verdict::Fail => ("FAIL", "31"),
        Verdict::Skipped => ("skip", "2"),
    };
    if colour {
        format!("\x1b[{code}m{w}\x1b[0m")
    } else {
        w.to_string()
    }
}
