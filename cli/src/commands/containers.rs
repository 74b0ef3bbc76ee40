//! `odysseus containers [HOST…]`: every container the service has on each host — roles of
//! every version, one-offs, dependencies, the Caddy in front — as the engine lists them.

use clap::Args;
use odysseus_executors::docker::containers::{Kind, Listed};
use serde_json::json;

use crate::config;
use crate::exit::{print_stdout, Exit, UsageError};
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(after_help = "\
Lists, per host, the service's containers whatever made them: each role's containers of
every version (running or stopped, kept for rollback), one-off commands, dependencies and
the shared Caddy. Touches nothing.

Exit codes: 0 every host answered; 2 bad usage or config; 3 a host could not be reached
(the others are still shown).")]
pub struct ContainersArgs {
    /// Hosts of the config (default: all).
    hosts: Vec<String>,
    /// One JSON document.
    #[arg(long)]
    json: bool,
}

pub fn run(global: &GlobalArgs, args: ContainersArgs) -> anyhow::Result<Exit> {
    let config = config::load_with(
        &global.config,
        &|name| std::env::var(name).ok(),
        config::SecretsHere::MayLack,
    )
    .map_err(|e| UsageError(e.to_string()))?;
    let hosts = super::hosts_of(&config, &global.config, &args.hosts)?;
    let runtime = super::runtime()?;
    let listed: Vec<(String, Result<Vec<Listed>, String>)> = runtime.block_on(async {
        let mut out = Vec::new();
        for host in hosts {
            let listed = match super::connect_quiet(&config, &host).await {
                Ok(executor) => executor
                    .containers_on(&host)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            out.push((host, listed));
        }
        out
    });
    let unreachable = listed.iter().any(|(_, l)| l.is_err());
    let text = if args.json {
        let doc = json!({
            "service": config.service,
            "hosts": listed.iter().map(|(host, l)| match l {
                Ok(cs) => json!({
                    "host": host,
                    "containers": cs.iter().map(|c| {
                        let (kind, of) = kind_words(&c.kind);
                        json!({
                            "name": c.name, "kind": kind, "of": of, "version": c.version,
                            "image": c.image, "state": c.state, "status": c.status,
                        })
                    }).collect::<Vec<_>>(),
                }),
                Err(e) => json!({"host": host, "error": e}),
            }).collect::<Vec<_>>(),
        });
        format!("{}\n", serde_json::to_string_pretty(&doc)?)
    } else {
        let mut text = String::new();
        for (host, l) in &listed {
            text.push_str(&format!("{host}\n"));
            match l {
                Ok(cs) if cs.is_empty() => text.push_str("  (no containers of this service)\n"),
                Ok(cs) => {
                    for c in cs {
                        let (kind, of) = kind_words(&c.kind);
                        let what = if of.is_empty() {
                            kind.to_string()
                        } else {
                            format!("{kind} {of}")
                        };
                        text.push_str(&format!(
                            "  {:<40} {:<16} {:<14} {:<9} {}\n",
                            c.name,
                            what,
                            if c.version.is_empty() {
                                "-"
                            } else {
                                &c.version
                            },
                            c.state,
                            c.status
                        ));
                    }
                }
                Err(e) => text.push_str(&format!("  UNREACHABLE: {e}\n")),
            }
        }
        text
    };
    print_stdout(&text)?;
    Ok(if unreachable { Exit::Blocked } else { Exit::Ok })
}

/// The kind of a container, and what it belongs to (a role or dependency name).
fn kind_words(kind: &Kind) -> (&'static str, &str) {
    match kind {
        Kind::Role(r) => ("role", r),
        Kind::OneOff => ("one-off", ""),
        Kind::Dependency(d) => ("dependency", d),
        Kind::Proxy => ("proxy", ""),
    }
}
