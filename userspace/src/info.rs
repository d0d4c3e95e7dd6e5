// SPDX-License-Identifier: GPL-2.0

//! `mapdrv info`: the answer of MAPDRV_IOC_INFO.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::abi::{MapdrvInfo, mode_name};
use crate::device::{Access, Device};

pub const HELP: &str = "\
Asks the driver with the MAPDRV_IOC_INFO ioctl for the buffer's size, its
number of pages, the kernel's page size and the mode of new mappings.

Examples:
  mapdrv info
  mapdrv info --json";

/// Show what MAPDRV_IOC_INFO reports: size, pages, page size, mode.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = HELP)]
pub struct Args {
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct InfoJson<'a> {
    device: &'a str,
    size: u64,
    pages: u64,
    page_size: u32,
    mode: u32,
    mode_name: String,
}

/// The human-readable form, one `key: value` line each.
fn text(device: &str, info: &MapdrvInfo) -> String {
    format!(
        "device:    {device}\n\
         size:      {} bytes\n\
         pages:     {}\n\
         page_size: {}\n\
         mode:      {} ({})\n",
        info.size,
        info.pages,
        info.page_size,
        mode_name(info.mode),
        info.mode
    )
}

/// Runs `mapdrv info`; true (an error is the only failure).
pub fn run(device: &Path, args: &Args, out: &mut dyn Write) -> Result<bool> {
    let dev = Device::open(device, Access::ReadOnly)?;
    let info = dev.query_info()?;
    let name = device.to_string_lossy();
    if args.json {
        let j = InfoJson {
            device: &name,
            size: info.size,
            pages: info.pages,
            page_size: info.page_size,
            mode: info.mode,
            mode_name: mode_name(info.mode),
        };
        writeln!(out, "{}", serde_json::to_string(&j)?)?;
    } else {
        write!(out, "{}", text(&name, &info))?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lists_every_field() {
        let info = MapdrvInfo {
            size: 40960,
            pages: 10,
            page_size: 4096,
            mode: crate::abi::MAPDRV_MODE_FAULTAROUND,
        };
        let t = text(crate::abi::MAPDRV_DEVICE, &info);
        assert!(t.contains("size:      40960 bytes\n"), "{t}");
        assert!(t.contains("pages:     10\n"), "{t}");
        assert!(t.contains("page_size: 4096\n"), "{t}");
        assert!(t.contains("mode:      faultaround (1)\n"), "{t}");
    }
}
