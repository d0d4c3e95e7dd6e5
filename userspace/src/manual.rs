// SPDX-License-Identifier: GPL-2.0

//! Shell completions and the man page, both generated from the clap
//! definition so that they can never disagree with `--help`.

use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

/// Print a shell completion script (bash, zsh, fish, elvish, powershell).
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Examples:\n  mapdrv completions bash > /etc/bash_completion.d/mapdrv\n  \
                        mapdrv completions zsh > ~/.zfunc/_mapdrv"
)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: Shell,
}

/// Print the man page (roff), generated from this help.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  mapdrv man | man -l -\n  mapdrv man > mapdrv.1")]
pub struct ManArgs {}

/// Writes the completion script for `shell` to `out`.
pub fn completions<C: CommandFactory>(shell: Shell, out: &mut dyn Write) -> Result<()> {
    let mut cmd = C::command();
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
}

/// Writes the man page (roff) of the whole tool to `out`, one section per
/// subcommand after the main page.
pub fn man<C: CommandFactory>(out: &mut dyn Write) -> Result<()> {
    let cmd = C::command();
    clap_mangen::Man::new(cmd.clone())
        .render(out)
        .context("cannot render the man page")?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let title = format!("{}-{}", cmd.get_name(), sub.get_name());
        clap_mangen::Man::new(sub.clone())
            .title(title)
            .render(out)
            .context("cannot render a subcommand's man page")?;
    }
    Ok(())
}
