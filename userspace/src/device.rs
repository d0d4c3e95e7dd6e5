// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers over /dev/mapdrv: open, ioctl, pread/pwrite, and mappings
//! of the buffer (a [`Mapping`], whose accesses are all atomic: the memory
//! is shared with the kernel, other mappings and other processes).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use nix::errno::Errno;
use nix::sys::mman::{MapFlags, ProtFlags};
use nix::unistd::{SysconfVar, Whence, sysconf};

use crate::abi::{self, MapdrvInfo};
use crate::mapping::Mapping;

/// How to open the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// Whether a mapping shares the buffer (`MAP_SHARED`) or copies on write
/// (`MAP_PRIVATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    Shared,
    Private,
}

impl Share {
    /// `MAP_SHARED` or `MAP_PRIVATE`.
    pub fn flags(self) -> MapFlags {
        match self {
            Share::Shared => MapFlags::MAP_SHARED,
            Share::Private => MapFlags::MAP_PRIVATE,
        }
    }
}

/// The first address of the kernel half of the address space for 48-bit
/// virtual addresses, which `access_ok` refuses as a user pointer. Where
/// the halves split is the instruction set's: x86_64's canonical upper half
/// (with 5-level paging it starts lower, at `0xff00_0000_0000_0000`, so this
/// address is in it too); on arm64 the half that TTBR1 translates, bit 55
/// set (a 52-bit kernel's starts at `0xfff0_0000_0000_0000`, below this).
///
/// 32-bit ARM has one address space split at `PAGE_OFFSET`: this is the
/// 3G/1G split's (the lowmem direct map starts there), which is in the
/// kernel's part with every split (`CONFIG_VMSPLIT_*`), as user space ends
/// at or below `0xbf00_0000`.
#[cfg(target_arch = "aarch64")]
pub const KERNEL_HALF_START: usize = 0xffff_0000_0000_0000;
#[cfg(not(any(target_arch = "aarch64", target_arch = "arm")))]
pub const KERNEL_HALF_START: usize = 0xffff_8000_0000_0000;
#[cfg(target_arch = "arm")]
pub const KERNEL_HALF_START: usize = 0xc000_0000;

/// `ULONG_MAX` of the kernel, which is also the largest `size_t`: the
/// kernel's `unsigned long` is as wide as our `usize` (64 bits, or 32 on
/// 32-bit ARM), and its sums of mmap offsets and lengths wrap there.
pub const ULONG_MAX: u64 = usize::MAX as u64;

/// A user pointer the kernel must refuse, for the EFAULT checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadPointer {
    /// Address 0: never mapped (vm.mmap_min_addr keeps page 0 free).
    Null,
    /// An address in the kernel half of the address space.
    KernelSpace,
}

impl BadPointer {
    fn addr(self) -> usize {
        match self {
            BadPointer::Null => 0,
            BadPointer::KernelSpace => KERNEL_HALF_START,
        }
    }
}

/// The buffer geometry reported by `MAPDRV_IOC_INFO`, checked for sanity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub pages: usize,
    pub page_size: usize,
    pub size: usize,
}

impl Geometry {
    /// Checks that the answer of the ioctl is self-consistent.
    pub fn from_info(info: &MapdrvInfo) -> Result<Geometry> {
        ensure!(
            info.page_size.is_power_of_two(),
            "MAPDRV_IOC_INFO reports page_size {}, which is not a power of two",
            info.page_size
        );
        ensure!(
            (1..=abi::MAX_PAGES).contains(&info.pages),
            "MAPDRV_IOC_INFO reports {} pages, outside 1..={}",
            info.pages,
            abi::MAX_PAGES
        );
        let expected = info.pages * u64::from(info.page_size);
        ensure!(
            info.size == expected,
            "MAPDRV_IOC_INFO reports size {} but pages * page_size = {} * {} = {expected}",
            info.size,
            info.pages,
            info.page_size
        );
        Ok(Geometry {
            pages: usize::try_from(info.pages)?,
            page_size: usize::try_from(info.page_size)?,
            size: usize::try_from(info.size)?,
        })
    }

    /// Byte offset of page `index`.
    pub fn offset(&self, index: usize) -> usize {
        index * self.page_size
    }
}

/// The page size of this process, from sysconf(_SC_PAGESIZE).
pub fn system_page_size() -> Result<usize> {
    let size = sysconf(SysconfVar::PAGE_SIZE)
        .context("sysconf(_SC_PAGESIZE)")?
        .context("sysconf(_SC_PAGESIZE) has no value")?;
    Ok(usize::try_from(size)?)
}

/// An open /dev/mapdrv.
#[derive(Debug)]
pub struct Device {
    file: File,
    path: PathBuf,
}

impl Device {
    /// Opens the device, with an error that says what to do when it fails.
    pub fn open(path: &Path, access: Access) -> Result<Device> {
        let file = OpenOptions::new()
            .read(true)
            .write(access == Access::ReadWrite)
            .open(path)
            .map_err(|e| open_error(path, e))?;
        Ok(Device {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `MAPDRV_IOC_INFO`, the raw result.
    pub fn info(&self) -> nix::Result<MapdrvInfo> {
        let mut info = MapdrvInfo::default();
        // SAFETY: `info` is a live, writable struct mapdrv_info, the exact type
        // the request code encodes, and the kernel writes at most its size.
        unsafe { abi::mapdrv_ioc_info(self.file.as_raw_fd(), &mut info) }?;
        Ok(info)
    }

    /// `MAPDRV_IOC_INFO` with an error that explains a failure.
    pub fn query_info(&self) -> Result<MapdrvInfo> {
        self.info().map_err(|e| match e {
            Errno::ENOTTY => anyhow!(
                "{} does not know MAPDRV_IOC_INFO (ENOTTY): is it the rust_mapdrv device? \
                 check `grep mapdrv /proc/misc` and the device node's minor number",
                self.path.display()
            ),
            e => anyhow!("MAPDRV_IOC_INFO on {} failed: {e}", self.path.display()),
        })
    }

    /// `MAPDRV_IOC_INFO` plus the sanity checks of [`Geometry::from_info`].
    pub fn geometry(&self) -> Result<(MapdrvInfo, Geometry)> {
        let info = self.query_info()?;
        Ok((info, Geometry::from_info(&info)?))
    }

    /// `MAPDRV_IOC_INFO` with a pointer the kernel must refuse (EFAULT).
    pub fn info_to_bad_pointer(&self, ptr: BadPointer) -> nix::Result<()> {
        // SAFETY: the kernel checks user pointers before writing (copy_to_user
        // fails with EFAULT): page 0 is never mapped and a kernel-half address
        // is not user memory, so no memory of this process can be written.
        let ret = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::c_ulong::from(abi::MAPDRV_IOC_INFO),
                ptr.addr(),
            )
        };
        Errno::result(ret).map(drop)
    }

    /// An ioctl with a NULL argument, for commands the driver must not know.
    pub fn ioctl_null_arg(&self, cmd: u32) -> nix::Result<libc::c_int> {
        // SAFETY: the argument is NULL, so even a driver that wrongly treats
        // it as a pointer cannot reach any memory of this process.
        let ret = unsafe { libc::ioctl(self.file.as_raw_fd(), libc::c_ulong::from(cmd), 0usize) };
        Errno::result(ret)
    }

    /// One pread(2) (pread64: see [`off64`]).
    pub fn pread(&self, buf: &mut [u8], offset: u64) -> nix::Result<usize> {
        // SAFETY: the kernel writes at most `buf.len()` bytes to `buf`, a
        // live slice this call borrows mutably.
        let n = unsafe {
            libc::pread64(
                self.file.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                off64(offset),
            )
        };
        Errno::result(n).map(|n| n as usize)
    }

    /// One pwrite(2) (pwrite64: see [`off64`]).
    pub fn pwrite(&self, buf: &[u8], offset: u64) -> nix::Result<usize> {
        // SAFETY: the kernel only reads `buf.len()` bytes from `buf`, a live
        // slice this call borrows.
        let n = unsafe {
            libc::pwrite64(
                self.file.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                off64(offset),
            )
        };
        Errno::result(n).map(|n| n as usize)
    }

    /// Reads exactly `len` bytes at `offset` (several preads if they are short).
    pub fn read_exact_at(&self, offset: usize, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let at = offset + done;
            let n = self
                .pread(&mut buf[done..], at as u64)
                .with_context(|| format!("pread of {} at byte {at}", len - done))?;
            if n == 0 {
                bail!(
                    "pread at byte {at} returned 0 (end of buffer) before {len} bytes from {offset}"
                );
            }
            done += n;
        }
        Ok(buf)
    }

    /// Writes all of `data` at `offset` (several pwrites if they are short).
    pub fn write_all_at(&self, offset: usize, data: &[u8]) -> Result<()> {
        let mut done = 0;
        while done < data.len() {
            let at = offset + done;
            let n = self
                .pwrite(&data[done..], at as u64)
                .with_context(|| format!("pwrite of {} at byte {at}", data.len() - done))?;
            if n == 0 {
                bail!("pwrite at byte {at} wrote nothing");
            }
            done += n;
        }
        Ok(())
    }

    /// lseek(fd, 0, SEEK_SET) (lseek64: the same 64-bit position on every
    /// architecture).
    pub fn seek_start(&self) -> nix::Result<i64> {
        nix::unistd::lseek64(self.file.as_fd(), 0, Whence::SeekSet)
    }

    /// mmap(NULL, len, prot, MAP_SHARED or MAP_PRIVATE, fd, offset).
    ///
    /// `offset` is passed as the kernel sees it (an unsigned long; on
    /// 32-bit ARM a page number, see [`Mapping::file`]), so huge offsets
    /// can be tried; a `len` of 0 is passed on as is.
    pub fn map(
        &self,
        offset: u64,
        len: usize,
        prot: ProtFlags,
        share: Share,
    ) -> nix::Result<Mapping> {
        Mapping::file(self.file.as_fd(), offset, len, prot, share.flags())
    }

    /// [`Device::map`] asking for address `hint` ([`Mapping::file_at_hint`]:
    /// the kernel may place it elsewhere).
    pub fn map_at_hint(
        &self,
        offset: u64,
        len: usize,
        prot: ProtFlags,
        share: Share,
        hint: usize,
    ) -> nix::Result<Mapping> {
        Mapping::file_at_hint(self.file.as_fd(), offset, len, prot, share.flags(), hint)
    }
}

impl AsRawFd for Device {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

/// A file offset for the `*64` calls (pread64, pwrite64, mmap64), bit for
/// bit, so that huge offsets can be tried: the kernel takes a pread offset
/// as a 64-bit `loff_t` on every architecture, but libc's `off_t` is 32
/// bits on 32-bit ARM, where the plain calls would cut offsets above 2 GiB.
/// On 64-bit architectures the `*64` calls are the plain ones.
pub fn off64(offset: u64) -> libc::off64_t {
    offset as libc::off64_t
}

fn open_error(path: &Path, err: io::Error) -> anyhow::Error {
    let p = path.display();
    match err.raw_os_error() {
        Some(libc::ENOENT) => anyhow!(
            "no {p}: is rust_mapdrv loaded? try: insmod rust_mapdrv.ko \
             (and check `grep mapdrv /proc/misc`)"
        ),
        Some(libc::ENXIO | libc::ENODEV) => anyhow!(
            "{p} exists but no driver answers it (stale device node?): \
             check `grep mapdrv /proc/misc`, then try: insmod rust_mapdrv.ko"
        ),
        Some(libc::EACCES | libc::EPERM) => {
            anyhow!("permission denied opening {p}: run as root")
        }
        _ => anyhow::Error::new(err).context(format!("cannot open {p}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(size: u64, pages: u64, page_size: u32) -> MapdrvInfo {
        MapdrvInfo {
            size,
            pages,
            page_size,
            mode: abi::MAPDRV_MODE_FAULT,
        }
    }

    #[test]
    fn geometry_accepts_consistent_info() {
        let g = Geometry::from_info(&info(40960, 10, 4096)).unwrap();
        assert_eq!(
            g,
            Geometry {
                pages: 10,
                page_size: 4096,
                size: 40960
            }
        );
        assert_eq!(g.offset(3), 12288);
    }

    #[test]
    fn geometry_rejects_inconsistent_info() {
        assert!(Geometry::from_info(&info(40960, 10, 4000)).is_err());
        assert!(Geometry::from_info(&info(4096, 10, 4096)).is_err());
        assert!(Geometry::from_info(&info(0, 0, 4096)).is_err());
        let too_many = (abi::MAX_PAGES + 1) * 4096;
        assert!(Geometry::from_info(&info(too_many, abi::MAX_PAGES + 1, 4096)).is_err());
    }

    #[test]
    fn open_errors_say_what_to_do() {
        let err = Device::open(Path::new("/nonexistent/mapdrv"), Access::ReadOnly).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("is rust_mapdrv loaded?"), "{msg}");
        assert!(msg.contains("insmod rust_mapdrv.ko"), "{msg}");
    }

    /// Exercises Mapping on an ordinary file: reads, writes, shrink, move.
    #[test]
    fn mapping_of_a_regular_file() {
        let page = system_page_size().unwrap();
        let mut tmp = tempfile::tempfile().unwrap();
        let content: Vec<u8> = (0..2 * page).map(|i| (i % 251) as u8).collect();
        io::Write::write_all(&mut tmp, &content).unwrap();
        let dev = Device {
            file: tmp,
            path: PathBuf::from("tmpfile"),
        };
        let rw = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        let mut m = dev.map(0, 2 * page, rw, Share::Shared).unwrap();
        assert_eq!(m.read_vec(0, 2 * page), content);
        assert_eq!(m.read_vec(3, 5), content[3..8]);
        m.write_u8(page + 1, 0xee);
        assert_eq!(dev.read_exact_at(page + 1, 1).unwrap(), [0xee]);

        m.remap(page, false).unwrap();
        assert_eq!(m.len(), page);
        let target = Mapping::reserve(page).unwrap();
        let to = target.addr();
        m.move_onto(target).unwrap();
        assert_eq!(m.addr(), to);
        assert_eq!(m.read_u8(7), content[7]);

        m.protect(ProtFlags::PROT_READ).unwrap();
        assert_eq!(m.read_u8(0), content[0]);
        assert_eq!(dev.map(0, 0, rw, Share::Shared).unwrap_err(), Errno::EINVAL);
    }
}
