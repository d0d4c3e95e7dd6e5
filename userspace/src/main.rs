// SPDX-License-Identifier: GPL-2.0

//! mapdrv: the user-space side of the rust_mapdrv kernel module.

mod abi;
mod bench;
mod buddy;
mod child;
mod content;
mod debugfs;
mod device;
mod dump;
mod fatal;
mod fuzz;
mod info;
mod layout;
mod manual;
mod mapping;
mod pagemap;
mod progress;
mod race;
mod stress;
mod summary;
mod verify;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
Examples:
  insmod rust_mapdrv.ko pages=16
  mapdrv info
  mapdrv dump --page 3 --count 2
  mapdrv verify

Exit status: 0 on success, 1 on an error or a failed check, 2 for usage
errors.";

#[derive(Debug, Parser)]
#[command(
    name = "mapdrv",
    version,
    about = "Inspect and verify /dev/mapdrv, the rust_mapdrv vmalloc mmap device",
    after_help = AFTER_HELP
)]
struct Cli {
    /// The device node.
    #[arg(long, global = true, value_name = "PATH", default_value = abi::MAPDRV_DEVICE)]
    device: PathBuf,

    #[command(subcommand)]
    command: Command,
}

// The subcommands, each with its arguments, help and `run` in its own
// module.
#[derive(Debug, Subcommand)]
enum Command {
    Dump(dump::Args),
    Info(info::Args),
    Verify(verify::Args),
    Bench(bench::Args),
    Completions(manual::CompletionsArgs),
    Man(manual::ManArgs),
    Layout(layout::Args),
    Buddy(buddy::Args),
    Fuzz(fuzz::Args),
    Stress(stress::Args),
    Race(race::Args),
}

/// Runs the subcommand; false when one of its checks failed.
fn run(cli: Cli, out: &mut dyn Write) -> Result<bool> {
    let device = &cli.device;
    match &cli.command {
        Command::Dump(args) => dump::run(device, args, out),
        Command::Info(args) => info::run(device, args, out),
        Command::Verify(args) => verify::run(device, args, out),
        Command::Bench(args) => bench::run(device, args, out),
        Command::Completions(args) => manual::completions::<Cli>(args.shell, out).map(|()| true),
        Command::Man(_) => manual::man::<Cli>(out).map(|()| true),
        Command::Layout(args) => layout::run(device, args, out),
        Command::Buddy(args) => buddy::run(device, args, out),
        Command::Fuzz(args) => fuzz::run(device, args, out),
        Command::Stress(args) => stress::run(device, args, out),
        Command::Race(args) => race::run(device, args, out),
    }
}

/// True when the error is a closed stdout (e.g. `mapdrv dump | head`).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::BrokenPipe)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match run(cli, &mut out) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = out.flush();
            eprintln!("mapdrv: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completions_and_man_are_generated() {
        let mut bash = Vec::new();
        manual::completions::<Cli>(clap_complete::Shell::Bash, &mut bash).unwrap();
        let bash = String::from_utf8(bash).unwrap();
        for sub in ["dump", "info", "verify", "completions", "man"] {
            assert!(bash.contains(sub), "bash completion lacks {sub}");
        }
        let mut page = Vec::new();
        manual::man::<Cli>(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.starts_with(".ie"),
            "not roff: {}",
            &page[..40.min(page.len())]
        );
        assert!(page.contains(".TH mapdrv-verify"));
        assert!(page.contains("MAPDRV_IOC_INFO"));
    }

    /// Every subcommand teaches by example, and its text renders as written
    /// (no stray escape left at the start of a line).
    #[test]
    fn every_subcommand_help_has_examples() {
        let mut cli = Cli::command();
        cli.build();
        for sub in cli.get_subcommands_mut().filter(|s| s.get_name() != "help") {
            let name = sub.get_name().to_string();
            let help = sub.render_long_help().to_string();
            assert!(help.contains("Examples:\n  mapdrv "), "{name}: no examples");
            assert!(
                !help.lines().any(|l| l.trim_start().starts_with('\\')),
                "{name}: a stray backslash in:\n{help}"
            );
        }
    }

    #[test]
    fn arguments_parse() {
        let cli = Cli::try_parse_from(["mapdrv", "dump", "--page", "3", "--hex", "--bytes", "64"])
            .unwrap();
        assert!(matches!(
            cli.command,
            Command::Dump(dump::Args {
                page: 3,
                hex: true,
                bytes: Some(64),
                ..
            })
        ));
        let cli = Cli::try_parse_from(["mapdrv", "verify", "--device", "/dev/x", "--threads", "8"])
            .unwrap();
        assert_eq!(cli.device, PathBuf::from("/dev/x"));
        assert!(matches!(
            cli.command,
            Command::Verify(verify::Args { threads: 8, .. })
        ));
        assert!(Cli::try_parse_from(["mapdrv", "verify", "--threads", "0"]).is_err());
        assert!(Cli::try_parse_from(["mapdrv", "dump", "--hex", "--json"]).is_err());
        assert!(Cli::try_parse_from(["mapdrv", "dump", "--bytes", "4"]).is_err());
    }
}
