// SPDX-License-Identifier: GPL-2.0

//! Subcommands that report as they go and end with a summary share one way
//! to print it: with `--json` the running report is dropped and only the
//! summary is printed, as one pretty JSON document.

use std::io::{self, Write};

use anyhow::Result;

/// Runs a subcommand that reports as it goes and returns a summary: with
/// `json`, its running report is dropped and the summary is printed as one
/// pretty JSON document instead.
pub fn summarised<S: serde::Serialize>(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct S {
        ok: bool,
    }

    #[test]
    fn json_replaces_the_running_report() {
        let run = |w: &mut dyn Write| -> Result<S> {
            writeln!(w, "going")?;
            Ok(S { ok: true })
        };
        let mut text = Vec::new();
        summarised(false, &mut text, run).unwrap();
        assert_eq!(text, b"going\n");
        let mut json = Vec::new();
        assert!(summarised(true, &mut json, run).unwrap().ok);
        assert_eq!(String::from_utf8(json).unwrap(), "{\n  \"ok\": true\n}\n");
    }
}
