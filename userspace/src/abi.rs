// SPDX-License-Identifier: GPL-2.0

//! The user-space ABI of rust_mapdrv, mirroring `include/mapdrv.h`.
//!
//! The C header is the one source of the ABI (the module is built from it).
//! The test at the bottom compiles the header with `cc` and checks that this
//! mirror agrees with it on the struct layout, the ioctl number and every
//! constant; `MAPDRV_UAPI_INCLUDE` points it at another copy of the header
//! (tests/host/abi.sh uses that to show the test failing on a changed one).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Default path of the misc device (`MAPDRV_DEVICE`).
pub const MAPDRV_DEVICE: &str = "/dev/mapdrv";

/// Largest buffer the module accepts (`MAPDRV_MAX_PAGES`, the `pages` parameter).
pub const MAX_PAGES: u64 = 262_144;

/// Values of the `mode` module parameter and of `MapdrvInfo::mode`.
pub const MAPDRV_MODE_FAULT: u32 = 0;
pub const MAPDRV_MODE_FAULTAROUND: u32 = 1;
pub const MAPDRV_MODE_PREFAULT: u32 = 2;
pub const MAPDRV_MODE_HUGE: u32 = 3;

/// `struct mapdrv_info`: the answer of `MAPDRV_IOC_INFO` (24 bytes, no padding).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MapdrvInfo {
    /// Buffer size in bytes (`pages * page_size`).
    pub size: u64,
    /// Buffer size in pages.
    pub pages: u64,
    /// `PAGE_SIZE` of the kernel.
    pub page_size: u32,
    /// `MAPDRV_MODE_*` used for new mappings.
    pub mode: u32,
}

/// `MAPDRV_IOC_MAGIC`.
pub const MAPDRV_IOC_MAGIC: u8 = b'M';
/// Command number of `MAPDRV_IOC_INFO`.
pub const MAPDRV_IOC_INFO_NR: u8 = 1;
/// `MAPDRV_IOC_INFO = _IOR('M', 1, struct mapdrv_info)`.
pub const MAPDRV_IOC_INFO: u32 = nix::request_code_read!(
    MAPDRV_IOC_MAGIC,
    MAPDRV_IOC_INFO_NR,
    std::mem::size_of::<MapdrvInfo>()
) as u32;

nix::ioctl_read!(
    /// `ioctl(fd, MAPDRV_IOC_INFO, &mut info)`.
    mapdrv_ioc_info,
    MAPDRV_IOC_MAGIC,
    MAPDRV_IOC_INFO_NR,
    MapdrvInfo
);

/// How the driver maps pages into a new mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One page per fault, like the classic nopage driver.
    Fault,
    /// Each fault also maps a batch of neighbouring pages.
    Faultaround,
    /// Every page is inserted at mmap time.
    Prefault,
    /// A 2 MiB block per fault with one PMD entry where the mapping allows
    /// it (shared, 2 MiB-aligned address and offset), else one page.
    Huge,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Fault, Mode::Faultaround, Mode::Prefault, Mode::Huge];

    /// The mode for a `MAPDRV_MODE_*` value, `None` for an unknown value.
    pub fn from_raw(raw: u32) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.raw() == raw)
    }

    /// The `MAPDRV_MODE_*` value.
    pub fn raw(self) -> u32 {
        match self {
            Mode::Fault => MAPDRV_MODE_FAULT,
            Mode::Faultaround => MAPDRV_MODE_FAULTAROUND,
            Mode::Prefault => MAPDRV_MODE_PREFAULT,
            Mode::Huge => MAPDRV_MODE_HUGE,
        }
    }

    /// The name used by the debugfs `mode` file and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Fault => "fault",
            Mode::Faultaround => "faultaround",
            Mode::Prefault => "prefault",
            Mode::Huge => "huge",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mode {
    type Err = String;

    /// Accepts a name (`fault`, `faultaround`, `prefault`, `huge`) or its
    /// number.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s || s.parse::<u32>().ok() == Some(m.raw()))
            .ok_or_else(|| {
                format!(
                    "unknown mode {s:?}: expected fault (0), faultaround (1), prefault (2) or huge (3)"
                )
            })
    }
}

/// The mode name for a raw value, `unknown(<n>)` when the value is not known.
pub fn mode_name(raw: u32) -> String {
    Mode::from_raw(raw).map_or_else(|| format!("unknown({raw})"), |m| m.name().to_string())
}

impl MapdrvInfo {
    /// The size of `struct mapdrv_info`, what `MAPDRV_IOC_INFO` copies out.
    pub const SIZE: usize = std::mem::size_of::<MapdrvInfo>();

    /// Each field's (offset, size), in the order of the C header: a copy
    /// to user memory that faults stops at a field, so callers predicting a
    /// partial copy need the field boundaries.
    pub const FIELDS: [(usize, usize); 4] = [
        (
            std::mem::offset_of!(MapdrvInfo, size),
            MapdrvInfo::field_size(|i| &i.size),
        ),
        (
            std::mem::offset_of!(MapdrvInfo, pages),
            MapdrvInfo::field_size(|i| &i.pages),
        ),
        (
            std::mem::offset_of!(MapdrvInfo, page_size),
            MapdrvInfo::field_size(|i| &i.page_size),
        ),
        (
            std::mem::offset_of!(MapdrvInfo, mode),
            MapdrvInfo::field_size(|i| &i.mode),
        ),
    ];

    /// The bytes the driver copies to user memory for this answer.
    pub fn to_ne_bytes(self) -> [u8; MapdrvInfo::SIZE] {
        let mut b = [0u8; MapdrvInfo::SIZE];
        let fields: [&[u8]; 4] = [
            &self.size.to_ne_bytes(),
            &self.pages.to_ne_bytes(),
            &self.page_size.to_ne_bytes(),
            &self.mode.to_ne_bytes(),
        ];
        for ((off, len), bytes) in MapdrvInfo::FIELDS.into_iter().zip(fields) {
            b[off..off + len].copy_from_slice(bytes);
        }
        b
    }

    /// The size of the field that `field` picks out.
    const fn field_size<F>(_field: fn(&MapdrvInfo) -> &F) -> usize {
        std::mem::size_of::<F>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::mem::{offset_of, size_of};
    use std::path::Path;
    use std::process::Command;

    #[test]
    fn layout_on_the_rust_side() {
        assert_eq!(size_of::<MapdrvInfo>(), 24);
        assert_eq!(offset_of!(MapdrvInfo, size), 0);
        assert_eq!(offset_of!(MapdrvInfo, pages), 8);
        assert_eq!(offset_of!(MapdrvInfo, page_size), 16);
        assert_eq!(offset_of!(MapdrvInfo, mode), 20);
        // _IOR('M', 1, 24 bytes): dir read (2) << 30 | size << 16 | 'M' << 8 | 1.
        assert_eq!(MAPDRV_IOC_INFO, (2 << 30) | (24 << 16) | (0x4d << 8) | 1);
    }

    #[test]
    fn info_bytes_follow_the_c_layout() {
        let info = MapdrvInfo {
            size: 0x1000,
            pages: 1,
            page_size: 4096,
            mode: MAPDRV_MODE_PREFAULT,
        };
        let b = info.to_ne_bytes();
        assert_eq!(b.len(), 24);
        assert_eq!(&b[0..8], &0x1000u64.to_ne_bytes());
        assert_eq!(&b[8..16], &1u64.to_ne_bytes());
        assert_eq!(&b[16..20], &4096u32.to_ne_bytes());
        assert_eq!(&b[20..24], &MAPDRV_MODE_PREFAULT.to_ne_bytes());
        assert_eq!(
            MapdrvInfo::FIELDS,
            [(0, 8), (8, 8), (16, 4), (20, 4)],
            "the fields of struct mapdrv_info end to end, no padding"
        );
    }

    #[test]
    fn modes_round_trip() {
        for m in Mode::ALL {
            assert_eq!(Mode::from_raw(m.raw()), Some(m));
            assert_eq!(m.name().parse::<Mode>(), Ok(m));
            assert_eq!(m.raw().to_string().parse::<Mode>(), Ok(m));
        }
        assert_eq!(Mode::from_raw(4), None);
        assert!("faulty".parse::<Mode>().is_err());
        assert_eq!(mode_name(1), "faultaround");
        assert_eq!(mode_name(7), "unknown(7)");
    }

    const C_PROBE: &str = r#"
#include <stddef.h>
#include <stdio.h>
#include "mapdrv.h"

int main(void)
{
	printf("sizeof %zu\n", sizeof(struct mapdrv_info));
	printf("offset_size %zu\n", offsetof(struct mapdrv_info, size));
	printf("offset_pages %zu\n", offsetof(struct mapdrv_info, pages));
	printf("offset_page_size %zu\n", offsetof(struct mapdrv_info, page_size));
	printf("offset_mode %zu\n", offsetof(struct mapdrv_info, mode));
	printf("ioc_info %lu\n", (unsigned long)MAPDRV_IOC_INFO);
	printf("ioc_magic %d\n", MAPDRV_IOC_MAGIC);
	printf("mode_fault %d\n", MAPDRV_MODE_FAULT);
	printf("mode_faultaround %d\n", MAPDRV_MODE_FAULTAROUND);
	printf("mode_prefault %d\n", MAPDRV_MODE_PREFAULT);
	printf("mode_huge %d\n", MAPDRV_MODE_HUGE);
	printf("max_pages %d\n", MAPDRV_MAX_PAGES);
	printf("device %s\n", MAPDRV_DEVICE);
	return 0;
}
"#;

    /// Compiles and runs the probe against `include/mapdrv.h` (or the copy
    /// in `$MAPDRV_UAPI_INCLUDE`), returning its `key value` lines. No C
    /// compiler is a failure, not a skip.
    fn c_side() -> BTreeMap<String, String> {
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
        let include = std::env::var_os("MAPDRV_UAPI_INCLUDE").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("include"),
            std::path::PathBuf::from,
        );
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let src = dir.path().join("probe.c");
        let exe = dir.path().join("probe");
        std::fs::write(&src, C_PROBE).expect("write probe.c");
        let out = Command::new(&cc)
            .arg("-Wall")
            .arg("-Werror")
            .arg("-I")
            .arg(&include)
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "the ABI test needs a C compiler but `{cc}` could not be run ({e}); \
                     install gcc (or set CC): this test must not be skipped"
                )
            });
        assert!(
            out.status.success(),
            "`{cc}` failed to compile a probe against {}:\n{}",
            include.join("mapdrv.h").display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let run = Command::new(&exe).output().expect("run the compiled probe");
        assert!(run.status.success(), "the probe failed: {run:?}");
        String::from_utf8(run.stdout)
            .expect("probe output is UTF-8")
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn header_matches_rust_side() {
        let c = c_side();
        let expect = [
            ("sizeof", size_of::<MapdrvInfo>().to_string()),
            ("offset_size", offset_of!(MapdrvInfo, size).to_string()),
            ("offset_pages", offset_of!(MapdrvInfo, pages).to_string()),
            (
                "offset_page_size",
                offset_of!(MapdrvInfo, page_size).to_string(),
            ),
            ("offset_mode", offset_of!(MapdrvInfo, mode).to_string()),
            ("ioc_info", MAPDRV_IOC_INFO.to_string()),
            ("ioc_magic", MAPDRV_IOC_MAGIC.to_string()),
            ("mode_fault", MAPDRV_MODE_FAULT.to_string()),
            ("mode_faultaround", MAPDRV_MODE_FAULTAROUND.to_string()),
            ("mode_prefault", MAPDRV_MODE_PREFAULT.to_string()),
            ("mode_huge", MAPDRV_MODE_HUGE.to_string()),
            ("max_pages", MAX_PAGES.to_string()),
            ("device", MAPDRV_DEVICE.to_string()),
        ];
        for (key, rust) in expect {
            assert_eq!(
                c.get(key),
                Some(&rust),
                "mapdrv.h and src/abi.rs disagree on {key}"
            );
        }
    }
}
