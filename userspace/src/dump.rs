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

/// What to dump and how.
#[derive(Debug, Clone)]
pub struct DumpOptions {
    /// First page.
    pub page: usize,
    /// Number of pages; `None` means up to the end of the buffer.
    pub count: Option<usize>,
    /// Hexdump instead of text.
    pub hex: bool,
    /// With `hex`: bytes shown per page (`None`: the whole page).
    pub bytes: Option<usize>,
    /// One JSON object instead of text.
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

pub fn run(device: &Path, opts: &DumpOptions, out: &mut dyn Write) -> Result<()> {
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

    fatal::install(fatal::Style::Stderr)?;
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
    Ok(())
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
