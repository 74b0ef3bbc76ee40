//! `odysseus logs HOST [--role R] [-f] [-n N]`: what the serving container printed.

use clap::Args;

use crate::config;
use crate::exit::{Exit, UsageError};
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(
    after_help = "Exit codes: 0 shown; 2 bad usage or config; 3 the host could not be reached or runs nothing for the role."
)]
pub struct LogsArgs {
    /// A host of the config (`local`, `name` or `name:port`).
    host: String,
    /// The role whose serving container to show.
    #[arg(long, default_value = "web")]
    role: String,
    /// Keep printing new output until interrupted.
    #[arg(short = 'f', long)]
    follow: bool,
    /// How many lines from the end to start with.
    #[arg(short = 'n', long, default_value_t = 100)]
    lines: usize,
}

pub fn run(global: &GlobalArgs, args: LogsArgs) -> anyhow::Result<Exit> {
    let config = config::load_with(
        &global.config,
        &|name| std::env::var(name).ok(),
        config::SecretsHere::MayLack,
    )
    .map_err(|e| UsageError(e.to_string()))?;
    if !config.hosts().contains(&args.host) {
        return Err(UsageError(format!(
            "{} is not a host of {} (hosts: {})",
            args.host,
            global.config.display(),
            config.hosts().join(", ")
        ))
        .into());
    }
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let executor = match super::connect(&config, std::slice::from_ref(&args.host)).await {
            Ok(e) => e,
            Err(exit) => return Ok(exit),
        };
        let printing = executor.print_logs(&args.host, &args.role, args.lines, args.follow);
        tokio::select! {
            result = printing => match result {
                Ok(_) => Ok(Exit::Ok),
                Err(e) => {
                    eprintln!("odysseus: {e}");
                    Ok(Exit::Blocked)
                }
            },
            _ = tokio::signal::ctrl_c() => Ok(Exit::Ok),
        }
    })
}
