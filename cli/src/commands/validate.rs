//! `odysseus validate`: check deploy.yml without touching anything.

use clap::Args;

use crate::config;
use crate::exit::{print_stdout, Exit, UsageError};
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(after_help = "\
Checks every key, type and value of deploy.yml (and that every env.secret is set in the
environment) and reports every problem at once, each with file and line where known.
Keys that are accepted but not acted on yet are listed.

Exit codes: 0 valid; 2 not valid.")]
pub struct ValidateArgs {}

pub fn run(global: &GlobalArgs, _args: ValidateArgs) -> anyhow::Result<Exit> {
    let config = config::load_with(
        &global.config,
        &|name| std::env::var(name).ok(),
        config::SecretsHere::MayLack,
    )
    .map_err(|e| UsageError(e.to_string()))?;
    let hosts = config.hosts();
    let mut out = format!(
        "{} is valid: service {}, image {}, {} role(s) on {} host(s), batch {}, on_failure {}\n",
        global.config.display(),
        config.service,
        config.image,
        config.roles.len(),
        hosts.len(),
        config.batch_size.hosts(hosts.len()),
        config.on_failure.as_str()
    );
    for warning in &config.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    for key in &config.not_yet_supported {
        out.push_str(&format!(
            "not yet supported (accepted, not acted on): {key}\n"
        ));
    }
    print_stdout(&out)?;
    Ok(Exit::Ok)
}
