// SPDX-License-Identifier: GPL-2.0

//! The driver's debugfs directory (/sys/kernel/debug/mapdrv): pure parsers
//! of the files the tool reads, a reader that explains why the directory is
//! unreachable, and guards that put back what the tool changes there, so a
//! run leaves the driver as it found it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};

use crate::abi::Mode;

/// Where debugfs is normally mounted, and the driver's directory in it.
pub const DEBUGFS_MOUNT: &str = "/sys/kernel/debug";
pub const DEFAULT_DIR: &str = "/sys/kernel/debug/mapdrv";

/// One line of the `pages` file: `<index> 0x<kernel vaddr> 0x<pfn> [more...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLine {
    pub index: u64,
    pub vaddr: u64,
    pub pfn: u64,
}

fn parse_hex(field: &str) -> Result<u64> {
    let digits = field
        .strip_prefix("0x")
        .ok_or_else(|| anyhow!("{field:?} does not start with 0x"))?;
    u64::from_str_radix(digits, 16).map_err(|e| anyhow!("{field:?} is not hexadecimal: {e}"))
}

/// Parses the `pages` file: `#` header line(s), then one line per page with
/// indices 0, 1, 2, ... in order. Extra columns are ignored.
pub fn parse_pages(text: &str) -> Result<Vec<PageLine>> {
    let mut pages = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parse = || -> Result<PageLine> {
            let mut fields = line.split_whitespace();
            let mut next = |what| fields.next().ok_or_else(|| anyhow!("no {what} column"));
            let index = next("index")?;
            let index = index
                .parse::<u64>()
                .map_err(|e| anyhow!("index {index:?}: {e}"))?;
            let vaddr = parse_hex(next("vaddr")?).context("vaddr")?;
            let pfn = parse_hex(next("pfn")?).context("pfn")?;
            Ok(PageLine { index, vaddr, pfn })
        };
        let page = parse().with_context(|| format!("pages line {}: {line:?}", n + 1))?;
        ensure!(
            page.index == pages.len() as u64,
            "pages line {}: index {} where {} was expected",
            n + 1,
            page.index,
            pages.len()
        );
        pages.push(page);
    }
    Ok(pages)
}

/// The counters of the `stats` file.
pub type Stats = BTreeMap<String, u64>;

/// Parses `key value` lines (decimal u64). Blank lines and `#` comments are
/// skipped; a `key:` spelling is accepted too.
pub fn parse_stats(text: &str) -> Result<Stats> {
    let mut stats = Stats::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(key), Some(value), None) = (fields.next(), fields.next(), fields.next()) else {
            bail!("stats line {}: {line:?} is not `key value`", n + 1);
        };
        let key = key.strip_suffix(':').unwrap_or(key);
        let value = value
            .parse::<u64>()
            .map_err(|e| anyhow!("stats line {}: value of {key} {value:?}: {e}", n + 1))?;
        stats.insert(key.to_string(), value);
    }
    Ok(stats)
}

/// One counter of the `stats` file, or an error naming the missing key
/// (callers add when, or why it may be missing).
pub fn stat(stats: &Stats, key: &str) -> Result<u64> {
    stats
        .get(key)
        .copied()
        .ok_or_else(|| anyhow!("no `{key}` line in debugfs stats"))
}

/// Parses the `mode` file: a mode name and a newline.
pub fn parse_mode(text: &str) -> Result<Mode> {
    text.trim()
        .parse::<Mode>()
        .map_err(|e| anyhow!("mode file: {e}"))
}

/// Whether /proc/mounts text lists a debugfs mounted at `mountpoint`.
pub fn debugfs_mounted_at(mounts: &str, mountpoint: &str) -> bool {
    mounts.lines().any(|line| {
        let mut f = line.split_whitespace();
        let (_, dir, fstype) = (f.next(), f.next(), f.next());
        dir == Some(mountpoint) && fstype == Some("debugfs")
    })
}

/// The driver's debugfs directory, known to exist.
#[derive(Debug, Clone)]
pub struct Debugfs {
    dir: PathBuf,
}

impl Debugfs {
    /// Finds the directory, or explains in one sentence why it is missing.
    pub fn locate(dir: &Path) -> Result<Debugfs> {
        if dir.is_dir() {
            return Ok(Debugfs {
                dir: dir.to_path_buf(),
            });
        }
        if !nix::unistd::geteuid().is_root() {
            bail!(
                "{} is not readable: debugfs is root-only, run as root",
                dir.display()
            );
        }
        if dir == Path::new(DEFAULT_DIR) {
            let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
            if !debugfs_mounted_at(&mounts, DEBUGFS_MOUNT) {
                bail!(
                    "debugfs is not mounted at {DEBUGFS_MOUNT}: \
                     try: mount -t debugfs none {DEBUGFS_MOUNT}"
                );
            }
        }
        bail!(
            "no {}: is rust_mapdrv loaded, and the kernel built with CONFIG_DEBUG_FS?",
            dir.display()
        )
    }

    fn read(&self, name: &str) -> Result<String> {
        let path = self.dir.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    }

    pub fn pages(&self) -> Result<Vec<PageLine>> {
        parse_pages(&self.read("pages")?)
    }

    pub fn stats(&self) -> Result<Stats> {
        parse_stats(&self.read("stats")?)
    }

    pub fn mode(&self) -> Result<Mode> {
        parse_mode(&self.read("mode")?)
    }

    /// Writes `value` and a newline to the `mode` file, as `echo` would.
    pub fn write_mode(&self, value: &str) -> std::io::Result<()> {
        std::fs::write(self.dir.join("mode"), format!("{value}\n"))
    }
}

/// What a debugfs file held before the tool changed it; written back by
/// [`Saved::restore`], or when dropped (with a warning on stderr if that
/// fails, as a destructor cannot return the error).
#[derive(Debug)]
pub struct Saved {
    path: PathBuf,
    value: String,
    restored: bool,
}

impl Saved {
    /// Reads `name` in the driver's directory, to write it back later.
    pub fn read(debugfs: &Debugfs, name: &str) -> Result<Saved> {
        let value = debugfs.read(name)?;
        Ok(Saved {
            path: debugfs.dir.join(name),
            value: value.trim().to_string(),
            restored: false,
        })
    }

    /// Reads any settings file (sysfs, say), to write it back later. A
    /// choice file such as `always [never]` saves the choice in brackets.
    pub fn of_file(path: &Path) -> Result<Saved> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let value = match (text.find('['), text.find(']')) {
            (Some(a), Some(b)) if a < b => text[a + 1..b].to_string(),
            _ => text.trim().to_string(),
        };
        Ok(Saved {
            path: path.to_path_buf(),
            value,
            restored: false,
        })
    }

    /// What the file held.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Writes the saved value back now unless the file already holds it
    /// (each write of a driver setting is logged by the kernel), and keeps
    /// guarding it (for a caller that puts the driver back between runs).
    pub fn put_back(&self) -> std::io::Result<()> {
        let now = std::fs::read_to_string(&self.path)?;
        if now.trim() == self.value {
            return Ok(());
        }
        std::fs::write(&self.path, format!("{}\n", self.value))
    }

    /// Writes the saved value back and says whether that worked.
    pub fn restore(mut self) -> std::io::Result<()> {
        self.restored = true;
        self.put_back()
    }
}

impl Drop for Saved {
    fn drop(&mut self) {
        if !self.restored
            && let Err(e) = self.put_back()
        {
            eprintln!(
                "mapdrv: warning: cannot put {} back to {:?}: {e}",
                self.path.display(),
                self.value
            );
        }
    }
}

/// The driver's mode as the tool found it: set back by
/// [`ModeGuard::restore`] or when the guard is dropped (see [`Saved`]).
#[derive(Debug)]
pub struct ModeGuard {
    saved: Saved,
    at_start: Mode,
}

impl ModeGuard {
    /// Reads the mode now in force, to set it back later.
    pub fn save(debugfs: &Debugfs) -> Result<ModeGuard> {
        let saved = Saved::read(debugfs, "mode")?;
        let at_start = parse_mode(saved.value())?;
        Ok(ModeGuard { saved, at_start })
    }

    /// The mode found at the start.
    pub fn at_start(&self) -> Mode {
        self.at_start
    }

    /// Sets the mode found at the start again, and keeps guarding it.
    pub fn put_back(&self) -> std::io::Result<()> {
        self.saved.put_back()
    }

    /// Sets the mode found at the start again and says whether that worked.
    pub fn restore(self) -> std::io::Result<()> {
        self.saved.restore()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_file_parses() {
        let text = "# index vaddr pfn phys\n\
                    0 0xffffc90000123000 0x1a2b3 0x1a2b3000\n\
                    1 0xffffc90000124000 0x4567\n\
                    \n\
                    2 0xffffc90000125000 0xabc extra columns here\n";
        let pages = parse_pages(text).unwrap();
        assert_eq!(
            pages,
            vec![
                PageLine {
                    index: 0,
                    vaddr: 0xffff_c900_0012_3000,
                    pfn: 0x1a2b3
                },
                PageLine {
                    index: 1,
                    vaddr: 0xffff_c900_0012_4000,
                    pfn: 0x4567
                },
                PageLine {
                    index: 2,
                    vaddr: 0xffff_c900_0012_5000,
                    pfn: 0xabc
                },
            ]
        );
    }

    #[test]
    fn pages_file_errors_name_the_line() {
        let err = parse_pages("# h\n0 0x10 0x20\n2 0x30 0x40\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("line 3: index 2 where 1"),
            "{err:#}"
        );
        let err = parse_pages("0 0x10 20\n").unwrap_err();
        assert!(format!("{err:#}").contains("pfn"), "{err:#}");
        let err = parse_pages("0 0x10\n").unwrap_err();
        assert!(format!("{err:#}").contains("no pfn column"), "{err:#}");
        assert!(parse_pages("x 0x10 0x20\n").is_err());
        assert!(parse_pages("0 0xzz 0x20\n").is_err());
        assert_eq!(parse_pages("# only a header\n").unwrap(), vec![]);
    }

    #[test]
    fn stats_file_parses() {
        let stats =
            parse_stats("faults 12\nmmaps 3\nbytes_read 4096\nbytes_written: 0\n\n# c\n").unwrap();
        assert_eq!(stats["faults"], 12);
        assert_eq!(stats["mmaps"], 3);
        assert_eq!(stats["bytes_read"], 4096);
        assert_eq!(stats["bytes_written"], 0);
        assert_eq!(stats.len(), 4);
        assert_eq!(stat(&stats, "mmaps").unwrap(), 3);
        let err = stat(&stats, "insert_calls").unwrap_err().to_string();
        assert_eq!(err, "no `insert_calls` line in debugfs stats");
    }

    #[test]
    fn stats_file_errors() {
        assert!(parse_stats("faults\n").is_err());
        assert!(parse_stats("faults -1\n").is_err());
        assert!(parse_stats("faults 1 2\n").is_err());
        assert!(parse_stats("faults 0x10\n").is_err());
    }

    #[test]
    fn mode_file_parses() {
        assert_eq!(parse_mode("fault\n").unwrap(), Mode::Fault);
        assert_eq!(parse_mode("faultaround\n").unwrap(), Mode::Faultaround);
        assert_eq!(parse_mode("prefault").unwrap(), Mode::Prefault);
        assert!(parse_mode("turbo\n").is_err());
    }

    #[test]
    fn debugfs_mount_is_found() {
        let mounts = "sysfs /sys sysfs rw 0 0\n\
                      debugfs /sys/kernel/debug debugfs rw,relatime 0 0\n";
        assert!(debugfs_mounted_at(mounts, DEBUGFS_MOUNT));
        assert!(!debugfs_mounted_at(
            "sysfs /sys sysfs rw 0 0\n",
            DEBUGFS_MOUNT
        ));
        assert!(!debugfs_mounted_at(
            "none /sys/kernel/debug tmpfs rw 0 0\n",
            DEBUGFS_MOUNT
        ));
    }

    #[test]
    fn guards_put_back_what_they_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mode"), "faultaround\n").unwrap();
        std::fs::write(dir.path().join("map_pages"), "1\n").unwrap();
        let d = Debugfs::locate(dir.path()).unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();

        let guard = ModeGuard::save(&d).unwrap();
        assert_eq!(guard.at_start(), Mode::Faultaround);
        d.write_mode("prefault").unwrap();
        guard.restore().unwrap();
        assert_eq!(read("mode"), "faultaround\n");

        // Dropped without restore: put back all the same.
        let guard = ModeGuard::save(&d).unwrap();
        d.write_mode("fault").unwrap();
        guard.put_back().unwrap();
        assert_eq!(d.mode().unwrap(), Mode::Faultaround);
        d.write_mode("fault").unwrap();
        drop(guard);
        assert_eq!(d.mode().unwrap(), Mode::Faultaround);

        let saved = Saved::read(&d, "map_pages").unwrap();
        std::fs::write(dir.path().join("map_pages"), "0").unwrap();
        drop(saved);
        assert_eq!(read("map_pages"), "1\n");

        // A file that is gone: restore says so.
        let saved = Saved::read(&d, "map_pages").unwrap();
        drop(dir);
        assert!(saved.restore().is_err());
    }
}
