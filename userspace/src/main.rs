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
errors and subcommands that are not there yet.";

const DUMP_HELP: &str = "\
Maps the device read-only (MAP_SHARED) and prints, for each page, the text
the kernel put at its start (up to the first zero byte; unprintable bytes
as \\xNN). On a fresh load page i shows `mapdrv page <i>`.

Examples:
  mapdrv dump                      every page's text
  mapdrv dump --page 9 --count 1   just page 9
  mapdrv dump --hex --bytes 64     first 64 bytes of each page, as hex
  mapdrv dump --json | jq .pages[0].text";

const INFO_HELP: &str = "\
Asks the driver with the MAPDRV_IOC_INFO ioctl for the buffer's size, its
number of pages, the kernel's page size and the mode of new mappings.

Examples:
  mapdrv info
  mapdrv info --json";

const VERIFY_HELP: &str = "\
Checks the device contract from user space and prints one line per check:
  PASS: <name>
  FAIL: <name>: <why>
then `SUMMARY: <n> passed, <m> failed`. The exit status is 1 if any check
failed. Needs root (pagemap PFNs and debugfs are root-only) and debugfs at
/sys/kernel/debug. Bytes verify writes are saved first and written back at
the end, so the buffer is left as found.

Checks, in order:
{checks}

Examples:
  mapdrv verify
  mapdrv verify --threads 8 --verbose
  mapdrv verify --json";

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

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the text at the start of each page, or a hexdump.
    #[command(after_help = DUMP_HELP)]
    Dump {
        /// First page to show.
        #[arg(long, value_name = "N", default_value_t = 0)]
        page: usize,
        /// Number of pages to show [default: up to the last page].
        #[arg(long, value_name = "N")]
        count: Option<usize>,
        /// Hexdump the pages instead of printing their text.
        #[arg(long, conflicts_with = "json")]
        hex: bool,
        /// With --hex: bytes to show per page [default: the whole page].
        #[arg(long, value_name = "N", requires = "hex")]
        bytes: Option<usize>,
        /// Print one JSON object: {"page_size":..,"pages":[{"index","offset","text"}]}.
        #[arg(long)]
        json: bool,
    },
    /// Show what MAPDRV_IOC_INFO reports: size, pages, page size, mode.
    #[command(after_help = INFO_HELP)]
    Info {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Check the device contract; PASS/FAIL line per check.
    #[command(after_help = verify_help())]
    Verify {
        /// Print one JSON object {"checks":[{"name","ok","detail"}],"passed","failed"}.
        #[arg(long)]
        json: bool,
        /// Threads of the concurrent-faults check.
        #[arg(long, value_name = "N", default_value_t = 4,
              value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: u16,
        /// The driver's debugfs directory.
        #[arg(long, value_name = "DIR", default_value = debugfs::DEFAULT_DIR)]
        debugfs: PathBuf,
        /// Add each check's detail to its PASS line.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Measure the device's modes against the kernel's own paths.
    #[command(after_help = bench::HELP)]
    Bench(bench::BenchArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  mapdrv completions bash > /etc/bash_completion.d/mapdrv\n  \
                            mapdrv completions zsh > ~/.zfunc/_mapdrv"
    )]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from this help.
    #[command(after_help = "Examples:\n  mapdrv man | man -l -\n  mapdrv man > mapdrv.1")]
    Man,
    /// The kernel's address space and the allocation demo: table, JSON, SVG.
    #[command(after_help = layout::LAYOUT_HELP)]
    Layout(layout::Args),
    /// Watch /proc/buddyinfo while the module holds a block of 2^order pages.
    #[command(after_help = buddy::BUDDY_HELP)]
    Buddy(buddy::Args),
    /// Random syscalls against the device, checked against a model.
    #[command(after_help = fuzz::HELP)]
    Fuzz(fuzz::FuzzArgs),
    /// Concurrent mapping, faulting and unmapping from processes and threads.
    #[command(after_help = stress::HELP)]
    Stress(stress::StressArgs),
    /// Faults raced against madvise, munmap, mremap, mprotect, fork, close, modes.
    #[command(after_help = race::HELP)]
    Race(race::RaceArgs),
}

/// VERIFY_HELP with the check names filled in, a few per indented line.
fn verify_help() -> String {
    let names: Vec<&str> = verify::report::Check::ALL
        .iter()
        .map(|c| c.name())
        .collect();
    let lines: Vec<String> = names
        .chunks(4)
        .map(|c| format!("  {}", c.join(" ")))
        .collect();
    VERIFY_HELP.replace("{checks}", &lines.join("\n"))
}

fn run(cli: Cli, out: &mut dyn Write) -> Result<ExitCode> {
    match cli.command {
        Command::Dump {
            page,
            count,
            hex,
            bytes,
            json,
        } => {
            let opts = dump::DumpOptions {
                page,
                count,
                hex,
                bytes,
                json,
            };
            dump::run(&cli.device, &opts, out)?;
        }
        Command::Info { json } => info::run(&cli.device, json, out)?,
        Command::Verify {
            json,
            threads,
            debugfs,
            verbose,
        } => {
            let opts = verify::VerifyOptions {
                device: cli.device,
                debugfs,
                threads: usize::from(threads),
                json,
                verbose,
            };
            if !verify::run(&opts, out)? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Layout(args) => {
            if !layout::run(&cli.device, &args, out)? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Buddy(args) => {
            if !buddy::run(&args, out)? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Bench(args) => bench::run(&cli.device, &args, out)?,
        Command::Fuzz(args) => {
            let opts = args.options(cli.device);
            let summary = summarised(args.json, out, |w| fuzz::run(&opts, w))?;
            if !summary.ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Stress(args) => {
            let summary = summarised(args.json, out, |w| stress::run(&args, &cli.device, w))?;
            if !summary.ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Race(args) => {
            let summary = summarised(args.json, out, |w| race::run(&args, &cli.device, w))?;
            if !summary.ok {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Completions { shell } => manual::completions::<Cli>(shell, out)?,
        Command::Man => manual::man::<Cli>(out)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a subcommand that reports as it goes and returns a summary: with
/// `json`, its running report is dropped and the summary is printed as one
/// pretty JSON document instead.
fn summarised<S: serde::Serialize>(
    json: bool,
    out: &mut dyn Write,
    run: impl FnOnce(&mut dyn Write) -> Result<S>,
) -> Result<S> {
    if !json {
        return run(out);
    }
    let summary = run(&mut io::sink())?;
    serde_json::to_writer_pretty(&mut *out, &summary)?;
    writeln!(out)?;
    Ok(summary)
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
        Ok(code) => code,
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
    fn verify_help_lists_every_check() {
        let help = verify_help();
        for c in verify::report::Check::ALL {
            assert!(help.contains(c.name()), "{}", c.name());
        }
    }

    #[test]
    fn arguments_parse() {
        let cli = Cli::try_parse_from(["mapdrv", "dump", "--page", "3", "--hex", "--bytes", "64"])
            .unwrap();
        assert!(matches!(
            cli.command,
            Command::Dump {
                page: 3,
                hex: true,
                bytes: Some(64),
                ..
            }
        ));
        let cli = Cli::try_parse_from(["mapdrv", "verify", "--device", "/dev/x", "--threads", "8"])
            .unwrap();
        assert_eq!(cli.device, PathBuf::from("/dev/x"));
        assert!(matches!(cli.command, Command::Verify { threads: 8, .. }));
        assert!(Cli::try_parse_from(["mapdrv", "verify", "--threads", "0"]).is_err());
        assert!(Cli::try_parse_from(["mapdrv", "dump", "--hex", "--json"]).is_err());
        assert!(Cli::try_parse_from(["mapdrv", "dump", "--bytes", "4"]).is_err());
    }
}
