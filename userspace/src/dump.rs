// SPDX-License-Identifier: GPL-2.0

//! `mapdrv dump`: map the device read-only and show what the kernel put at
//! the start of each page, as text or as a hexdump.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::sys::mman::ProtFlags;
use pretty_hex::{HexConfig, config_hex};
use serde::Serialize;

use crate::content;
use crate::device::{Access, Device, Geometry, Share};
use crate::fatal;

pub const HELP: &str = "\
Maps the device read-only (MAP_SHARED) and prints, for each page, the text
the kernel put at its start (up to the first zero byte; unprintable bytes
as \\xNN). On a fresh load page i shows `mapdrv page <i>`.

Examples:
  mapdrv dump                      every page's text
  mapdrv dump --page 9 --count 1   just page 9
  mapdrv dump --hex --bytes 64     first 64 bytes of each page, as hex
  mapdrv dump --json | jq .pages[0].text";

/// Print the text at the start of each page, or a hexdump.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = HELP)]
pub struct Args {
    /// First page to show.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub page: usize,
    /// Number of pages to show [default: up to the last page].
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// Hexdump the pages instead of printing their text.
    #[arg(long, conflicts_with = "json")]
    pub hex: bool,
    /// With --hex: bytes to show per page [default: the whole page].
    #[arg(long, value_name = "N", requires = "hex")]
    pub bytes: Option<usize>,
    /// Print one JSON object: {"page_size":..,"pages":[{"index","offset","text"}]}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct PageJson {
    index: usize,
    offset: usize,
    text: String,
}

#[derive(Debug, Serialize)]
struct DumpJson {
    page_size: usize,
    pages: Vec<PageJson>,
}

/// The pages to dump, checked against the buffer: `first..first + count`.
pub fn page_range(geo: &Geometry, page: usize, count: Option<usize>) -> Result<(usize, usize)> {
    if page >= geo.pages {
        bail!(
            "--page {page} is past the end: the buffer has {} pages (0..={})",
            geo.pages,
            geo.pages - 1
        );
    }
    let count = count.unwrap_or(geo.pages - page);
    if count == 0 || page + count > geo.pages {
        bail!(
            "--count {count} from page {page} does not fit: the buffer has {} pages, \
             so at most --count {}",
            geo.pages,
            geo.pages - page
        );
    }
    Ok((page, count))
}

/// Runs `mapdrv dump`; true (an error is the only failure).
pub fn run(device: &Path, opts: &Args, out: &mut dyn Write) -> Result<bool> {
    let dev = Device::open(device, Access::ReadOnly)?;
    let (_, geo) = dev.geometry()?;
    let (first, count) = page_range(&geo, opts.page, opts.count)?;
    let offset = geo.offset(first);
    let map = dev
        .map(
            offset as u64,
            count * geo.page_size,
            ProtFlags::PROT_READ,
            Share::Shared,
        )
        .with_context(|| {
            format!(
                "mmap of pages {first}..{} of {} failed",
                first + count,
                device.display()
            )
        })?;

    fatal::install(fatal::to_stderr)?;
    fatal::set_current("dump");
    let mut page = vec![0u8; geo.page_size];
    let mut json = DumpJson {
        page_size: geo.page_size,
        pages: Vec::new(),
    };
    for i in 0..count {
        let index = first + i;
        map.read_into(i * geo.page_size, &mut page);
        if opts.json {
            json.pages.push(PageJson {
                index,
                offset: geo.offset(index),
                text: String::from_utf8_lossy(content::page_text(&page)).into_owned(),
            });
        } else if opts.hex {
            let cfg = HexConfig {
                title: false,
                max_bytes: opts.bytes.unwrap_or(geo.page_size),
                display_offset: geo.offset(index),
                ..HexConfig::default()
            };
            writeln!(out, "page {index} (offset {:#x}):", geo.offset(index))?;
            writeln!(out, "{}", config_hex(&page, cfg))?;
        } else {
            write!(out, "{}", content::printable_text(&page))?;
        }
    }
    if opts.json {
        writeln!(out, "{}", serde_json::to_string(&json)?)?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GEO: Geometry = Geometry {
        pages: 10,
        page_size: 4096,
        size: 40960,
    };

    #[test]
    fn default_range_is_the_rest_of_the_buffer() {
        assert_eq!(page_range(&GEO, 0, None).unwrap(), (0, 10));
        assert_eq!(page_range(&GEO, 7, None).unwrap(), (7, 3));
        assert_eq!(page_range(&GEO, 9, Some(1)).unwrap(), (9, 1));
    }

    #[test]
    fn ranges_outside_the_buffer_are_refused() {
        let err = page_range(&GEO, 10, None).unwrap_err().to_string();
        assert!(err.contains("the buffer has 10 pages"), "{err}");
        let err = page_range(&GEO, 8, Some(3)).unwrap_err().to_string();
        assert!(err.contains("at most --count 2"), "{err}");
        assert!(page_range(&GEO, 0, Some(0)).is_err());
    }
}
