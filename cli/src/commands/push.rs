//! `odysseus push`: send an image from this machine to every host that lacks it.

use clap::Args;

use crate::config;
use crate::exit::{Exit, UsageError};
use crate::GlobalArgs;

#[derive(Args, Debug)]
#[command(after_help = "\
There is no registry in between: the image is exported from this machine's Docker engine
and loaded into each host's engine through its SSH connection. Hosts that already have
the same image id are skipped, so pushing twice sends nothing the second time.

Exit codes: 0 every host has the image; 2 bad usage or config; 3 a host could not be
reached or the image is not on this machine.")]
pub struct PushArgs {
    /// The tag to send: the image is `<image>:<TAG>`.
    #[arg(long, value_name = "TAG")]
    image: Option<String>,
}

pub fn run(global: &GlobalArgs, args: PushArgs) -> anyhow::Result<Exit> {
    let config = config::load(&global.config, &|name| std::env::var(name).ok())
        .map_err(|e| UsageError(e.to_string()))?;
    let tag = crate::version::choose(
        args.image.as_deref(),
        config.default_tag.as_deref(),
        &global.config,
    )?
    .ok_or_else(|| UsageError(crate::version::none_message(&global.config)))?;
    let image = format!("{}:{tag}", config.image);
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let executor = match super::connect(&config, &config.hosts()).await {
            Ok(e) => e,
            Err(exit) => return Ok(exit),
        };
        match super::deploy::push_and_report(&executor, &image).await {
            Ok(()) => Ok(Exit::Ok),
            Err(e) => {
                eprintln!("odysseus: {e}");
                Ok(Exit::Blocked)
            }
        }
    })
}
