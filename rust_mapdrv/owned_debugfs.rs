// SPDX-License-Identifier: GPL-2.0

//! debugfs files that pin the module while they are open.
//!
//! Linux 7.3's `kernel::debugfs` builds its `file_operations` without an
//! `.owner`. debugfs's proxy (`full_proxy_open_regular` in
//! `fs/debugfs/file.c`) takes a reference to the owner of the real
//! operations on open and drops it in `full_proxy_release`, so with no owner
//! an open debugfs file does not keep the module loaded: `rmmod` succeeds,
//! and the later `close()` calls the `release` of operations that were
//! unloaded with the module (an oops). With `.owner` set, `rmmod` fails with
//! `EAGAIN` ("in use") while any of our files is open, like it does for the
//! open device.
//!
//! So this file is the one place that makes debugfs files with raw bindings,
//! until the kernel crate sets the owner itself. What it offers is safe:
//!
//! - [`Operations`] are the `file_operations` of all files with one type of
//!   data, made once as a `static` item with the module as their owner;
//! - [`Dir`] is a directory of files that all show (and may store into) one
//!   value of that data, which it owns; dropping it removes the directory and
//!   its files first (`debugfs_remove` waits for calls in progress, and makes
//!   later calls on still-open files fail with `EIO`), then the data.
//!
//! A file is a [`FileSpec`]: a name, a `show` function that prints the file
//! and, for a writable file, a `store` function that gets what was written.

use core::{marker::PhantomData, pin::Pin};
use kernel::{
    bindings,
    ffi::{c_char, c_int, c_void},
    fmt,
    module::ThisModule,
    prelude::*,
    seq_file::SeqFile,
    seq_print,
    uaccess::{UserPtr, UserSlice, UserSliceReader},
};

/// Prints a file's content.
pub(crate) type Show<D> = fn(&D, &mut fmt::Formatter<'_>) -> fmt::Result;
/// Takes what was written to a file.
pub(crate) type Store<D> = fn(&D, &mut UserSliceReader) -> Result;

/// One file of a [`Dir`].
pub(crate) struct FileSpec<D: 'static> {
    /// The file's name in the directory.
    pub(crate) name: &'static CStr,
    /// What reading the file shows.
    pub(crate) show: Show<D>,
    /// What a write does; `None` for a read-only file (mode 0400, no
    /// `.write`, so a write fails with `EINVAL` like other read-only files).
    pub(crate) store: Option<Store<D>>,
}

/// The `file_operations` of files whose data is a `D`, owned by a module.
///
/// # Invariants
///
/// `read_only` and `read_write` are `seq_file` operations whose `open`
/// expects the inode's private data to point to a [`FileEntry<D>`] that
/// outlives the inode; `owner` of both is the module these functions are in.
pub(crate) struct Operations<D> {
    read_only: bindings::file_operations,
    read_write: bindings::file_operations,
    _data: PhantomData<fn(&D)>,
}

// SAFETY: The tables are never written after they are made; the kernel only
// reads them. They hold function pointers and the module pointer, which may
// be used from any thread.
unsafe impl<D> Sync for Operations<D> {}

impl<D: Sync + 'static> Operations<D> {
    /// The operations of `D`'s files, owned by `module`, which must be the
    /// module this code is built into (`THIS_MODULE`). Meant for a `static`:
    ///
    /// `static OPERATIONS: Operations<Data> = Operations::new(&THIS_MODULE);`
    pub(crate) const fn new(module: &'static ThisModule) -> Self {
        let read_only = bindings::file_operations {
            owner: module.as_ptr(),
            open: Some(open::<D>),
            read: Some(bindings::seq_read),
            llseek: Some(bindings::seq_lseek),
            release: Some(bindings::single_release),
            ..pin_init::zeroed()
        };
        let read_write = bindings::file_operations {
            write: Some(write::<D>),
            ..read_only
        };
        // INVARIANT: `open::<D>` passes the inode's private data to
        // `single_open`, and `write::<D>` reads it back as a `FileEntry<D>`;
        // the caller says `module` is ours.
        Self {
            read_only,
            read_write,
            _data: PhantomData,
        }
    }
}

/// What a file's inode points to: its functions and the data.
struct FileEntry<D: 'static> {
    data: *const D,
    show: Show<D>,
    store: Option<Store<D>>,
}

/// A debugfs directory of `N` files over one `D`, removed when dropped.
///
/// # Invariants
///
/// `dentry` is the directory made by `debugfs_create_dir`, or an error
/// pointer if debugfs could not make it (then there are no files). Each file
/// in it has a pointer to one of `_entries`, whose `data` points to `*_data`;
/// `_entries` and `_data` stay where they are (boxed, pinned) until [`Drop`]
/// removed the files.
pub(crate) struct Dir<D: 'static, const N: usize> {
    dentry: *mut bindings::dentry,
    /// Kept (never read) for the files' pointers; freed after them.
    _entries: Pin<KBox<[FileEntry<D>; N]>>,
    /// Kept for the entries' pointers; freed last.
    _data: Pin<KBox<D>>,
}

// SAFETY: The dentry is only passed to `debugfs_remove`, which may be called
// from any thread; the entries are read-only after creation; `D: Send + Sync`.
unsafe impl<D: Send + Sync, const N: usize> Send for Dir<D, N> {}
// SAFETY: `&Dir` gives no access to anything (see `Send`).
unsafe impl<D: Send + Sync, const N: usize> Sync for Dir<D, N> {}

impl<D: Sync + 'static, const N: usize> Dir<D, N> {
    /// Makes `/sys/kernel/debug/<name>/` with `files`, all over `data`.
    ///
    /// Like the kernel crate's debugfs, a directory or file that debugfs
    /// cannot make (debugfs off, a name taken) is left out: debugfs is a
    /// view, not something the module needs.
    pub(crate) fn new(
        name: &CStr,
        data: D,
        files: [FileSpec<D>; N],
        operations: &'static Operations<D>,
    ) -> Result<Self> {
        let data = KBox::pin(data, GFP_KERNEL)?;
        let data_ptr: *const D = &*data;
        let names = files.each_ref().map(|f| f.name);
        let entries = KBox::pin(
            files.map(|f| FileEntry {
                data: data_ptr,
                show: f.show,
                store: f.store,
            }),
            GFP_KERNEL,
        )?;
        // SAFETY: `name` is a NUL-terminated string; a null parent is the
        // debugfs root. The result is a dentry or an error pointer.
        let dentry =
            unsafe { bindings::debugfs_create_dir(name.as_char_ptr(), core::ptr::null_mut()) };
        for (name, entry) in names.iter().zip(entries.iter()) {
            let (mode, fops) = match entry.store {
                Some(_) => (0o600, &operations.read_write),
                None => (0o400, &operations.read_only),
            };
            // SAFETY: `name` is NUL-terminated; `dentry` is our
            // directory or an error pointer, which debugfs refuses; `entry`
            // is pinned in `entries` and outlives the file (removed in
            // `Drop` before `entries` is freed); `fops` is `'static` and its
            // `open` expects exactly a `FileEntry<D>` (type invariant).
            unsafe {
                bindings::debugfs_create_file_full(
                    name.as_char_ptr(),
                    mode,
                    dentry,
                    core::ptr::from_ref(entry).cast_mut().cast(),
                    core::ptr::null(),
                    fops,
                )
            };
        }
        // INVARIANT: every file points to one of `entries`, each pointing to
        // `data`; the boxes are pinned and owned by the value returned.
        Ok(Self {
            dentry,
            _entries: entries,
            _data: data,
        })
    }
}

impl<D: 'static, const N: usize> Drop for Dir<D, N> {
    fn drop(&mut self) {
        // SAFETY: `dentry` is our directory or an error pointer, both of
        // which `debugfs_remove` accepts. It removes the files recursively
        // and waits for calls in progress; files still open afterwards fail
        // every call with `EIO` and no longer reach `entries` or `data`,
        // which are freed after this (fields drop after `drop`).
        unsafe { bindings::debugfs_remove(self.dentry) };
    }
}

/// `.open`: a `seq_file` over the file's entry.
///
/// # Safety
///
/// Called by debugfs's proxy for a file made by [`Dir::new`]: `inode`'s
/// private data is a live `FileEntry<D>` and `file` is being opened.
unsafe extern "C" fn open<D: Sync + 'static>(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: `inode` is valid during open (the caller's guarantee).
    let entry = unsafe { (*inode).i_private };
    // SAFETY: `file` is being opened; `show::<D>` gets `entry` back as the
    // `seq_file`'s private data, and the entry outlives the file's calls
    // (debugfs makes calls after the file's removal fail before they reach
    // us).
    unsafe { bindings::single_open(file, Some(show::<D>), entry) }
}

/// Prints the file through its entry's `show`.
///
/// # Safety
///
/// `seq` is the `seq_file` made by [`open`], whose private data is a live
/// `FileEntry<D>`.
unsafe extern "C" fn show<D: Sync + 'static>(
    seq: *mut bindings::seq_file,
    _: *mut c_void,
) -> c_int {
    // SAFETY: `seq` is live and its private data is a `FileEntry<D>` that
    // outlives this call (see `open`); entries are never written after
    // creation, so a shared reference is fine.
    let entry = unsafe { &*(*seq).private.cast::<FileEntry<D>>() };
    // SAFETY: `entry.data` points to the `Dir`'s pinned data, which outlives
    // its files; `D: Sync`, so sharing it across readers is fine.
    let data = unsafe { &*entry.data };
    // SAFETY: `seq` is a live `seq_file` for the duration of this call.
    let seq = unsafe { SeqFile::from_raw(seq) };
    seq_print!(
        seq,
        "{}",
        Shown {
            show: entry.show,
            data
        }
    );
    0
}

/// Adapts a `show` function to `Display` for `seq_print!`.
struct Shown<'a, D> {
    show: Show<D>,
    data: &'a D,
}

impl<D> fmt::Display for Shown<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.show)(self.data, f)
    }
}

/// `.write`: hands the user's bytes to the entry's `store`.
///
/// # Safety
///
/// Called by debugfs's proxy for a writable file made by [`Dir::new`] and
/// opened by [`open`]: `file`'s private data is the `seq_file` whose private
/// data is a live `FileEntry<D>`; `buf` is a user pointer to `count` bytes.
unsafe extern "C" fn write<D: Sync + 'static>(
    file: *mut bindings::file,
    buf: *const c_char,
    count: usize,
    _ppos: *mut bindings::loff_t,
) -> isize {
    // SAFETY: `single_open` set `private_data` to the `seq_file`, whose
    // private data is the entry (see `open`); both live while the file does.
    let entry = unsafe {
        let seq = (*file).private_data.cast::<bindings::seq_file>();
        &*(*seq).private.cast::<FileEntry<D>>()
    };
    let Some(store) = entry.store else {
        return EINVAL.to_errno() as isize;
    };
    // SAFETY: as in `show`.
    let data = unsafe { &*entry.data };
    let mut reader = UserSlice::new(UserPtr::from_ptr(buf.cast_mut().cast()), count).reader();
    match store(data, &mut reader) {
        Ok(()) => count as isize,
        Err(e) => e.to_errno() as isize,
    }
}
