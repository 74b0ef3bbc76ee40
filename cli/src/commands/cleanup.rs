//! `odysseus cleanup HOST`: take the service off one host — its containers (every role,
//! every version kept for rollback) and its route in Caddy — as a deployment of its own:
//! journaled step by step, under the deploy lock, resumable after an interruption.

use clap::Args;

use crate::exit::Exit;
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(after_help = "\
On HOST, for each role of the service: out of Caddy's route, its connections drained,
stopped (with its stop timeout), removed; then the service's route and TLS policy go. The
shared Caddy goes too only when no other route is left in it (its volumes, with
certificates, stay). Dependencies, other services, volumes and images are not touched.
HOST may be one deploy.yml no longer lists (a server being retired).

It is a deployment like any other: `odysseus replay` shows it, the deploy lock is held,
and an interrupted cleanup is finished with `odysseus deploy --resume` (or ended with
--abandon). It is never rolled back. Asks on a terminal; elsewhere --yes is required.

Exit codes: 0 removed (or nothing there); 1 a step failed (the cleanup halted); 2 bad
usage or config, or not confirmed; 3 blocked or interrupted (the message names the next
command).")]
pub struct CleanupArgs {
    /// The host to take the service off (`local`, `name` or `name:port`).
    host: String,
    /// Do not ask.
    #[arg(long)]
    yes: bool,
}

pub fn run(global: &GlobalArgs, args: CleanupArgs) -> anyhow::Result<Exit> {
    let service = crate::config::load_with(
        &global.config,
        &|name| std::env::var(name).ok(),
        crate::config::SecretsHere::MayLack,
    )
    .map(|c| c.service)
    .map_err(|e| crate::exit::UsageError(e.to_string()))?;
    let question = format!(
        "Remove every container of {service} and its route from {}? Requests for it there will fail from now on (and odysseus-caddy goes too if no other route is left in it).",
        args.host
    );
    if !crate::ask::confirm(&question, args.yes)? {
        eprintln!("odysseus: nothing changed");
        return Ok(Exit::Usage);
    }
    super::deploy::run(global, super::deploy::DeployArgs::for_cleanup(args.host))
}
