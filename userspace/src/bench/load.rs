// SPDX-License-Identifier: GPL-2.0

//! Loading and unloading rust_mapdrv for the benchmark: the module's load
//! time against `pages`, from the module's own timing of each phase
//! (debugfs `stats`: `load_alloc_ns`, `load_fill_ns`, `load_walk_ns`) and
//! from the finit_module(2) call timed here.

use std::ffi::CString;
use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use nix::kmod::{DeleteModuleFlags, ModuleInitFlags, delete_module, finit_module};

use super::mem::time_ns;
use super::model::{LoadSeries, Summary};
use crate::debugfs::{Debugfs, Stats, stat};

pub const MODULE_NAME: &str = "rust_mapdrv";

/// Whether the module is loaded now.
pub fn loaded() -> bool {
    Path::new("/sys/module").join(MODULE_NAME).exists()
}

/// Loads the module file `ko` with `params`; returns the call's time in ns.
pub fn load(ko: &File, params: &str) -> Result<f64> {
    let params = CString::new(params)?;
    let (ns, res) = time_ns(|| finit_module(ko, &params, ModuleInitFlags::empty()));
    res.map_err(|e| anyhow!("finit_module({MODULE_NAME}, {params:?}): {e}"))?;
    Ok(ns)
}

/// Unloads the module.
pub fn unload() -> Result<()> {
    delete_module(c"rust_mapdrv", DeleteModuleFlags::O_NONBLOCK)
        .map_err(|e| anyhow!("delete_module({MODULE_NAME}): {e}"))
}

/// The module's timing of its load phases, from debugfs `stats`.
fn phases(stats: &Stats) -> Result<[f64; 3]> {
    let get = |key: &str| {
        stat(stats, key)
            .map(|v| v as f64)
            .map_err(|e| anyhow!("{e}: is the module too old?"))
    };
    Ok([
        get("load_alloc_ns")?,
        get("load_fill_ns")?,
        get("load_walk_ns")?,
    ])
}

/// Loads and unloads the module at each of `sizes`, `rounds` times, the
/// sizes interleaved round by round (after one unrecorded warm-up round).
pub fn measure(
    ko: &File,
    sizes: &[usize],
    rounds: usize,
    debugfs: &Path,
    status: &super::Status,
) -> Result<Vec<LoadSeries>> {
    if loaded() {
        bail!(
            "{MODULE_NAME} is loaded: unload it first (rmmod {MODULE_NAME}); --module loads it itself"
        );
    }
    // (insmod, alloc, fill, walk) ns/page, per size, per round.
    let mut samples: Vec<Vec<[f64; 4]>> = vec![Vec::new(); sizes.len()];
    status.plan((rounds + 1) * sizes.len());
    for round in 0..=rounds {
        status.say(&format!("load timing: round {round}/{rounds}"));
        for k in 0..sizes.len() {
            let i = (k + round) % sizes.len();
            let pages = sizes[i];
            let insmod = load(ko, &format!("pages={pages}"))?;
            let read = Debugfs::locate(debugfs).and_then(|d| d.stats());
            unload()?;
            let [alloc, fill, walk] = phases(&read?)?;
            if round > 0 {
                let per = |ns: f64| ns / pages as f64;
                samples[i].push([per(insmod), per(alloc), per(fill), per(walk)]);
            }
            status.step(1);
        }
    }
    Ok(sizes
        .iter()
        .zip(samples)
        .map(|(&pages, s)| {
            let col = |j: usize| Summary::of(s.iter().map(|x| x[j]).collect());
            LoadSeries {
                pages,
                insmod_ns_per_page: col(0),
                alloc_ns_per_page: col(1),
                fill_ns_per_page: col(2),
                walk_ns_per_page: col(3),
                total_ns_per_page: Summary::of(s.iter().map(|x| x[1] + x[2] + x[3]).collect()),
            }
        })
        .collect())
}

/// Opens the module file.
pub fn open(ko: &Path) -> Result<File> {
    File::open(ko).with_context(|| format!("cannot open the module {}", ko.display()))
}
