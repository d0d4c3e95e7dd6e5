// SPDX-License-Identifier: GPL-2.0
//! Each rule of the fuzzer's model on small hand-made states: the errno
//! order, the edges (zero lengths, rounding, overflow, past the end, field
//! boundaries) and the changes a successful call makes.

use super::*;

const PS: usize = 4096;
/// Pages of the buffer and of the arena in these tests.
const BUF_PAGES: usize = 4;
const ARENA_PAGES: usize = 16;
/// An address `access_ok` accepts, and the highest one.
const USER_ADDR: usize = 0x7f00_0000_0000;
const USER_PTR_MAX: usize = (1 << 47) - PS;
/// The top of the default mmap window (x86_64's).
const MAP_WINDOW: u64 = 1 << 47;

fn model() -> Model {
    let shadow = (0..BUF_PAGES * PS).map(|i| (i / PS * 16 + i % 251) as u8);
    Model::new(shadow.collect(), PS, ARENA_PAGES, MAP_WINDOW)
}

/// Maps arena pages `at..at + pages` to buffer pages from `buf_page`, as
/// VMA `vma`.
fn map(
    m: &mut Model,
    at: usize,
    pages: usize,
    buf_page: usize,
    prot: Prot,
    shared: bool,
    vma: u64,
) {
    for i in 0..pages {
        m.arena[at + i] = Some(Mapped {
            vma,
            buf_page: buf_page + i,
            prot,
            shared,
            maywrite: true,
            dontfork: false,
            cow: None,
        });
    }
}

fn mmap_op(place: Place, len: u64, offset: u64, prot: Prot, kind: Kind) -> Mmap {
    Mmap {
        slot: 0,
        place,
        len,
        offset,
        prot,
        kind,
        populate: false,
    }
}

const RX: Prot = Prot {
    r: true,
    w: false,
    x: true,
};
const RW: Option<Access> = Some(Access::ReadWrite);
const RO: Option<Access> = Some(Access::ReadOnly);

/// The errno mmap is predicted to give and whether the driver gives it.
fn mmap_want(op: &Mmap, access: Option<Access>, noexec: bool) -> (Want, bool) {
    let plan = mmap(&model(), op, access, noexec).expect("applicable");
    (plan.want, plan.driver_refused)
}

fn anywhere(len: u64, offset: u64, prot: Prot, kind: Kind) -> Mmap {
    mmap_op(Place::Anywhere(None), len, offset, prot, kind)
}

#[test]
fn mmap_of_the_buffer_succeeds_and_rounds_the_length_up() {
    let op = mmap_op(
        Place::Fixed(3),
        2 * PS as u64 - 1,
        PS as u64,
        Prot::RW,
        Kind::Shared,
    );
    let plan = mmap(&model(), &op, RW, false).unwrap();
    assert_eq!(plan.want, Ok(()));
    assert_eq!(plan.pages, 2);
    // The whole buffer, from its start.
    let op = anywhere((BUF_PAGES * PS) as u64, 0, Prot::R, Kind::Private);
    assert_eq!(mmap_want(&op, RO, false), (Ok(()), false));
}

#[test]
fn mmap_that_would_not_fit_the_arena_is_skipped() {
    let m = model();
    let past = mmap_op(
        Place::Fixed(ARENA_PAGES - 1),
        2 * PS as u64,
        0,
        Prot::R,
        Kind::Shared,
    );
    assert_eq!(mmap(&m, &past, RW, false), None);
    let moved = mmap_op(
        Place::Anywhere(Some(ARENA_PAGES)),
        PS as u64,
        0,
        Prot::R,
        Kind::Shared,
    );
    assert_eq!(mmap(&m, &moved, RW, false), None);
    // A zero length in the arena takes no page: not applicable there...
    let zero = mmap_op(Place::Fixed(0), 0, 0, Prot::R, Kind::Shared);
    assert_eq!(mmap(&m, &zero, RW, false), None);
    // ...but where the kernel likes, it is refused.
    let zero = anywhere(0, 0, Prot::R, Kind::Shared);
    assert_eq!(mmap_want(&zero, RW, false), (Err(Errno::EINVAL), false));
}

#[test]
fn mmap_checks_the_offset_before_the_file() {
    let op = anywhere(PS as u64, 1, Prot::R, Kind::Shared);
    assert_eq!(mmap_want(&op, None, false), (Err(Errno::EINVAL), false));
    let op = anywhere(PS as u64, 0, Prot::R, Kind::Shared);
    assert_eq!(mmap_want(&op, None, false), (Err(Errno::EBADF), false));
}

#[test]
fn mmap_refuses_lengths_and_offsets_that_overflow() {
    let huge = anywhere(u64::MAX - 5, 0, Prot::R, Kind::Shared);
    assert_eq!(mmap_want(&huge, RW, false), (Err(Errno::ENOMEM), false));
    let window = anywhere(MAP_WINDOW, 0, Prot::R, Kind::Shared);
    assert_eq!(mmap_want(&window, RW, false), (Err(Errno::ENOMEM), false));
    // arm64's window is 256 TiB: 128 TiB gets past the core, and the
    // driver refuses it for running past the buffer.
    let mut arm64 = model();
    arm64.map_window = 1 << 48;
    let plan = mmap(&arm64, &window, RW, false).unwrap();
    assert_eq!((plan.want, plan.driver_refused), (Err(Errno::EINVAL), true));
    let ps = PS as u64;
    let top = anywhere(ps, (u64::MAX - ps + 1) & !(ps - 1), Prot::R, Kind::Shared);
    assert_eq!(mmap_want(&top, RW, false), (Err(Errno::EOVERFLOW), false));
    // The end of the range in bytes past 2^64: the core's overflow...
    let wraps = anywhere(2 * ps, (u64::MAX - ps) & !(ps - 1), Prot::R, Kind::Shared);
    assert_eq!(mmap_want(&wraps, RW, false), (Err(Errno::EOVERFLOW), false));
    // ...just below it, the driver's end of the buffer.
    let fits = anywhere(
        2 * ps,
        (u64::MAX - 2 * ps) & !(ps - 1),
        Prot::R,
        Kind::Shared,
    );
    assert_eq!(mmap_want(&fits, RW, false), (Err(Errno::EINVAL), true));
}

/// 32-bit ARM: `unsigned long` and `size_t` are 32 bits, user space ends
/// at TASK_SIZE, and libc's mmap64 hands the kernel a page number.
fn model_32() -> Model {
    let mut m = model();
    m.ulong_max = u32::MAX.into();
    m.map_window = 0xbf00_0000;
    m
}

#[test]
fn mmap_on_a_32_bit_kernel_wraps_at_2_to_the_32() {
    let m = model_32();
    let want = |op: &Mmap| {
        let plan = mmap(&m, op, RW, false).expect("applicable");
        (plan.want, plan.driver_refused)
    };
    let ps = PS as u64;
    let ulong_max = u64::from(u32::MAX);
    // A length that is no size_t here cannot be made (a 64-bit replay).
    let long = anywhere(1 << 32, 0, Prot::R, Kind::Shared);
    assert_eq!(mmap(&m, &long, RW, false), None);
    // PAGE_ALIGN wraps to 0; the whole of user space finds no room.
    let huge = anywhere(ulong_max - 5, 0, Prot::R, Kind::Shared);
    assert_eq!(want(&huge), (Err(Errno::ENOMEM), false));
    let window = anywhere(0xbf00_0000, 0, Prot::R, Kind::Shared);
    assert_eq!(want(&window), (Err(Errno::ENOMEM), false));
    // A page number beyond 32 bits: libc's mmap64 refuses it, before the
    // file is looked at; the last 32-bit page number wraps with 2 pages.
    let far = anywhere(ps, 1 << 44, Prot::R, Kind::Shared);
    assert_eq!(
        mmap(&m, &far, None, false).unwrap().want,
        Err(Errno::EINVAL)
    );
    let last = anywhere(2 * ps, ulong_max * ps, Prot::R, Kind::Shared);
    assert_eq!(want(&last), (Err(Errno::EOVERFLOW), false));
    // file_mmap_ok(): offset + length past ULONG_MAX in bytes...
    let top = anywhere(ps, (ulong_max - ps + 1) & !(ps - 1), Prot::R, Kind::Shared);
    assert_eq!(want(&top), (Err(Errno::EOVERFLOW), false));
    let wraps = anywhere(2 * ps, (ulong_max - ps) & !(ps - 1), Prot::R, Kind::Shared);
    assert_eq!(want(&wraps), (Err(Errno::EOVERFLOW), false));
    // ...just below it, the driver's end of the buffer.
    let fits = anywhere(
        2 * ps,
        (ulong_max - 2 * ps) & !(ps - 1),
        Prot::R,
        Kind::Shared,
    );
    assert_eq!(want(&fits), (Err(Errno::EINVAL), true));
    // On 64-bit the same offsets are far inside: the driver refuses them.
    assert_eq!(mmap_want(&wraps, RW, false), (Err(Errno::EINVAL), true));
}

#[test]
fn rw_on_a_32_bit_kernel_takes_a_32_bit_ssize_t() {
    let m = model_32();
    let (addr, user_ptr_max) = (0x1000_0000, 0xbf00_0000);
    let want = |len: u64| {
        let op = rw_op(Call::Pread, 0, len, UserBuf::Heap);
        rw(&m, &op, file(Access::ReadWrite, 0), addr, user_ptr_max).map(|p| p.want)
    };
    // Past SSIZE_MAX: EINVAL, once access_ok has passed it.
    assert_eq!(want(0x7fff_ffff), Some(Ok(())));
    assert_eq!(want(0x8000_0000), Some(Err(Errno::EINVAL)));
    assert_eq!(want(0xb000_0000), Some(Err(Errno::EFAULT)));
    assert_eq!(want(1 << 32), None);
    // 64-bit: the same lengths are fine.
    let op = rw_op(Call::Pread, 0, 0x8000_0000, UserBuf::Heap);
    assert_eq!(rw_plan(&model(), &op).want, Ok(()));
}

#[test]
fn mmap_fixed_noreplace_over_the_arena_exists() {
    let op = mmap_op(Place::NoReplace(2), PS as u64, 0, Prot::R, Kind::Shared);
    assert_eq!(mmap_want(&op, RW, false), (Err(Errno::EEXIST), false));
}

#[test]
fn mmap_type_flags_are_checked_by_the_core() {
    let ps = PS as u64;
    for (kind, errno) in [
        (Kind::NoType, Errno::EINVAL),
        (Kind::SharedValidateSync, Errno::EOPNOTSUPP),
        (Kind::PrivateHugetlb, Errno::EINVAL),
        (Kind::PrivateGrowsdown, Errno::EINVAL),
    ] {
        let op = anywhere(ps, 0, Prot::R, kind);
        assert_eq!(mmap_want(&op, RW, false), (Err(errno), false), "{kind:?}");
    }
    let op = anywhere(ps, 0, Prot::R, Kind::SharedValidate);
    assert_eq!(mmap_want(&op, RW, false), (Ok(()), false));
}

#[test]
fn mmap_permissions_private_versus_shared() {
    let ps = PS as u64;
    // A shared writable mapping needs a writable file; a private one not.
    let shared = anywhere(ps, 0, Prot::RW, Kind::Shared);
    assert_eq!(mmap_want(&shared, RO, false), (Err(Errno::EACCES), false));
    let private = anywhere(ps, 0, Prot::RW, Kind::Private);
    assert_eq!(mmap_want(&private, RO, false), (Ok(()), false));
    // Any mapping needs a readable file.
    let wo = Some(Access::WriteOnly);
    assert_eq!(mmap_want(&private, wo, false), (Err(Errno::EACCES), false));
    assert_eq!(mmap_want(&shared, wo, false), (Err(Errno::EACCES), false));
}

#[test]
fn mmap_exec_is_refused_by_the_mount_or_else_by_the_driver() {
    let op = anywhere(PS as u64, 0, RX, Kind::Private);
    assert_eq!(mmap_want(&op, RW, true), (Err(Errno::EPERM), false));
    assert_eq!(mmap_want(&op, RW, false), (Err(Errno::EPERM), true));
}

#[test]
fn mmap_past_the_end_of_the_buffer_is_refused_by_the_driver() {
    let ps = PS as u64;
    let size = (BUF_PAGES * PS) as u64;
    let at_end = anywhere(ps, size, Prot::R, Kind::Shared);
    assert_eq!(mmap_want(&at_end, RW, false), (Err(Errno::EINVAL), true));
    let too_long = anywhere(size + ps, 0, Prot::R, Kind::Shared);
    assert_eq!(mmap_want(&too_long, RW, false), (Err(Errno::EINVAL), true));
    let last_page = anywhere(ps, size - ps, Prot::R, Kind::Shared);
    assert_eq!(mmap_want(&last_page, RW, false), (Ok(()), false));
}

#[test]
fn a_refused_mmap_fixed_leaves_a_hole_only_after_the_core_unmapped() {
    let ps = PS as u64;
    let m = model();
    let driver = mmap_op(Place::Fixed(2), 2 * ps, 0, RX, Kind::Shared);
    let plan = mmap(&m, &driver, RW, false).unwrap();
    assert_eq!(plan.after_refusal(driver.place), AfterRefusal::Hole(2..4));
    let core = mmap_op(Place::Fixed(2), 2 * ps, 1, Prot::R, Kind::Shared);
    let plan = mmap(&m, &core, RW, false).unwrap();
    assert_eq!(plan.after_refusal(core.place), AfterRefusal::Intact(2..4));
    let moved = mmap_op(Place::Anywhere(Some(2)), ps, 0, RX, Kind::Shared);
    let plan = mmap(&m, &moved, RW, false).unwrap();
    assert_eq!(plan.after_refusal(moved.place), AfterRefusal::Unchanged);
}

#[test]
fn new_mapping_pages_follow_the_offset_and_the_type() {
    let m = model();
    let ps = PS as u64;
    let shared = mmap_op(Place::Fixed(0), 2 * ps, ps, Prot::RW, Kind::Shared);
    let pages = mmap_pages(&m, &shared, RO, 9);
    assert_eq!(pages.len(), 2);
    assert_eq!((pages[0].buf_page, pages[1].buf_page), (1, 2));
    assert!(
        pages
            .iter()
            .all(|p| p.vma == 9 && p.shared && p.cow.is_none())
    );
    // A shared mapping of a read-only file may never become writable.
    assert!(!pages[0].maywrite);
    assert!(mmap_pages(&m, &shared, RW, 9)[0].maywrite);
    // A private one always may; populated and writable, it has its copies.
    let mut private = mmap_op(Place::Fixed(0), ps, 2 * ps, Prot::RW, Kind::Private);
    let page = &mmap_pages(&m, &private, RO, 9)[0];
    assert!(page.maywrite && page.cow.is_none());
    private.populate = true;
    let page = &mmap_pages(&m, &private, RO, 9)[0];
    assert_eq!(page.cow.as_deref(), Some(&m.shadow[2 * PS..3 * PS]));
    private.prot = Prot::R;
    assert!(mmap_pages(&m, &private, RO, 9)[0].cow.is_none());
}

#[test]
fn munmap_inside_the_arena_only() {
    let m = model();
    assert_eq!(munmap(&m, 3, 2), Some(3..5));
    assert_eq!(
        munmap(&m, ARENA_PAGES - 1, 1),
        Some(ARENA_PAGES - 1..ARENA_PAGES)
    );
    assert_eq!(munmap(&m, ARENA_PAGES - 1, 2), None);
}

/// A model with arena pages 2..6 one shared VMA of buffer pages 0..4.
fn one_vma() -> Model {
    let mut m = model();
    map(&mut m, 2, 4, 0, Prot::RW, true, 5);
    m
}

#[test]
fn mremap_needs_one_device_vma_and_room_in_the_arena() {
    let m = one_vma();
    assert_eq!(mremap(&m, 0, 1, 1, None), None, "a placeholder");
    assert_eq!(mremap(&m, 2, 5, 5, None), None, "past the VMA");
    assert_eq!(mremap(&m, 2, 0, 1, None), None, "no old pages");
    assert_eq!(mremap(&m, 2, 2, 2, Some(ARENA_PAGES - 1)), None);
    assert_eq!(mremap(&m, 2, 2, 0, Some(8)), None, "a move to nothing");
}

#[test]
fn mremap_errors() {
    let m = one_vma();
    let want = |page, old, new, to| mremap(&m, page, old, new, to).unwrap().want;
    assert_eq!(want(2, 2, 0, None), Err(Errno::EINVAL));
    assert_eq!(want(2, 2, 2, Some(3)), Err(Errno::EINVAL), "overlapping");
    // VM_DONTEXPAND: never grows, in place or moved.
    assert_eq!(want(2, 2, 3, None), Err(Errno::EFAULT));
    assert_eq!(want(2, 2, 3, Some(10)), Err(Errno::EFAULT));
    assert_eq!(want(2, 2, 1, Some(4)), Ok(()), "just after the source");
}

#[test]
fn mremap_shrink_in_place_drops_the_tail() {
    let mut m = one_vma();
    let plan = mremap(&m, 3, 3, 1, None).unwrap();
    assert_eq!(plan.want, Ok(()));
    assert_eq!(plan.apply(&mut m), (4..6, None));
    assert!(m.arena[3].is_some() && m.arena[4].is_none() && m.arena[5].is_none());
    // The same size changes nothing.
    let plan = mremap(&m, 2, 2, 2, None).unwrap();
    let (gone, moved) = plan.apply(&mut m);
    assert!(gone.is_empty() && moved.is_none());
    assert!(m.all_mapped(2..4));
}

#[test]
fn mremap_move_makes_a_new_vma_of_the_same_pages() {
    let mut m = one_vma();
    let plan = mremap(&m, 3, 2, 1, Some(10)).unwrap();
    assert_eq!(plan.apply(&mut m), (3..5, Some(10..11)));
    assert!(m.arena[3].is_none() && m.arena[4].is_none());
    let moved = m.arena[10].as_ref().unwrap();
    assert_eq!(moved.buf_page, 1);
    assert_ne!(moved.vma, 5);
    assert_eq!(m.vma_range(2), Some(2..3));
    assert_eq!(m.vma_range(5), Some(5..6));
}

#[test]
fn mprotect_only_of_device_pages() {
    let m = one_vma();
    assert_eq!(mprotect(&m, 1, 2, Prot::R), None, "a placeholder");
    assert_eq!(mprotect(&m, ARENA_PAGES - 1, 2, Prot::R), None);
    let plan = mprotect(&m, 2, 4, Prot::RW).unwrap();
    assert_eq!((plan.want, plan.changed), (Ok(()), vec![]), "no change");
}

#[test]
fn mprotect_exec_is_refused() {
    let m = one_vma();
    let plan = mprotect(&m, 2, 1, RX).unwrap();
    assert_eq!(plan.want, Err(Errno::EACCES));
    assert!(plan.changed.is_empty());
}

#[test]
fn mprotect_stops_at_the_first_vma_that_refuses() {
    let mut m = model();
    map(&mut m, 2, 2, 0, Prot::R, true, 5);
    map(&mut m, 4, 2, 2, Prot::R, true, 6);
    if let Some(p) = m.arena[4].as_mut() {
        p.maywrite = false;
    }
    if let Some(p) = m.arena[5].as_mut() {
        p.maywrite = false;
    }
    let plan = mprotect(&m, 3, 3, Prot::RW).unwrap();
    assert_eq!(plan.want, Err(Errno::EACCES));
    // The part of the first VMA in range keeps its new protection.
    assert_eq!(plan.changed, vec![3..4]);
    plan.apply(&mut m);
    assert_eq!(m.arena[3].as_ref().unwrap().prot, Prot::RW);
    assert_eq!(m.arena[2].as_ref().unwrap().prot, Prot::R);
    assert_eq!(m.vma_range(2), Some(2..3), "the VMA split");
    assert_eq!(m.vma_range(4), Some(4..6));
}

#[test]
fn madvise_errors_by_advice() {
    let mut m = one_vma();
    map(&mut m, 8, 1, 0, Prot::RW, false, 7);
    let want = |page, pages, advice, swap| madvise(&m, page, pages, advice, swap).unwrap().want;
    assert_eq!(
        madvise(&m, ARENA_PAGES - 1, 2, Advice::DontNeed, true),
        None
    );
    assert_eq!(want(0, 4, Advice::DontNeed, false), Ok(()));
    assert_eq!(want(0, 4, Advice::DontFork, false), Ok(()));
    // WILLNEED on the anonymous placeholders needs swap support.
    assert_eq!(want(1, 2, Advice::WillNeed, false), Err(Errno::EBADF));
    assert_eq!(want(1, 2, Advice::WillNeed, true), Ok(()));
    assert_eq!(want(2, 2, Advice::WillNeed, false), Ok(()));
    assert_eq!(want(1, 2, Advice::DoFork, true), Err(Errno::EINVAL));
    assert_eq!(
        want(0, 2, Advice::DoFork, true),
        Ok(()),
        "placeholders only"
    );
    assert_eq!(want(0, 3, Advice::Remove, true), Err(Errno::EINVAL));
    assert_eq!(want(2, 1, Advice::Remove, true), Err(Errno::ENODEV));
    assert_eq!(want(8, 1, Advice::Remove, true), Err(Errno::EACCES));
}

#[test]
fn madvise_dontneed_drops_private_copies_and_dontfork_splits() {
    let mut m = model();
    map(&mut m, 2, 3, 0, Prot::RW, false, 5);
    m.store(2 * PS, &[1, 2, 3]);
    assert!(m.arena[2].as_ref().unwrap().cow.is_some());
    madvise(&m, 2, 1, Advice::DontNeed, true)
        .unwrap()
        .apply(&mut m);
    assert!(m.arena[2].as_ref().unwrap().cow.is_none());
    assert_eq!(m.byte(2 * PS), Some(m.shadow[0]));
    madvise(&m, 3, 1, Advice::DontFork, true)
        .unwrap()
        .apply(&mut m);
    assert!(m.arena[3].as_ref().unwrap().dontfork);
    assert!(!m.arena[2].as_ref().unwrap().dontfork);
    assert_eq!(m.vma_range(3), Some(3..4));
}

#[test]
fn loads_and_stores_need_the_protection_on_every_page() {
    let mut m = model();
    map(&mut m, 2, 1, 0, Prot::R, true, 5);
    map(&mut m, 3, 1, 1, Prot::RW, true, 6);
    assert!(touchable(&m, 2 * PS, 2 * PS, false));
    assert!(!touchable(&m, 2 * PS, 2 * PS, true));
    assert!(touchable(&m, 3 * PS, PS, true));
    assert!(!touchable(&m, 4 * PS - 1, 2, true), "into a placeholder");
    assert!(!touchable(&m, 3 * PS, 0, false), "nothing to touch");
    assert!(
        !touchable(&m, ARENA_PAGES * PS - 1, 2, false),
        "past the arena"
    );
}

fn rw_op(call: Call, offset: i64, len: u64, buf: UserBuf) -> ops::Rw {
    ops::Rw {
        slot: 0,
        call,
        offset,
        len,
        buf,
        seed: 7,
    }
}

fn file(access: Access, pos: i64) -> Option<OpenFile> {
    Some(OpenFile { access, pos })
}

/// The rule for `op` on a read-write file at position 0, with the user
/// buffer at an address `access_ok` accepts.
fn rw_rule(m: &Model, op: &ops::Rw) -> Option<RwPlan> {
    rw(m, op, file(Access::ReadWrite, 0), USER_ADDR, USER_PTR_MAX)
}

fn rw_plan(m: &Model, op: &ops::Rw) -> RwPlan {
    rw_rule(m, op).expect("applicable")
}

#[test]
fn rw_span_stays_inside_the_buffer() {
    assert_eq!(rw_span(0, 10, 100), 10);
    assert_eq!(rw_span(95, 10, 100), 5);
    assert_eq!(rw_span(100, 10, 100), 0);
    assert_eq!(rw_span(-1, 10, 100), 0);
    assert_eq!(rw_span(0, 0, 100), 0);
    assert_eq!(rw_span(0, u64::MAX, usize::MAX >> 1), MAX_RW_COUNT as usize);
}

#[test]
fn rw_reads_and_writes_from_the_heap() {
    let m = model();
    let size = (BUF_PAGES * PS) as i64;
    let read = rw_plan(&m, &rw_op(Call::Pread, size - 10, 100, UserBuf::Heap));
    assert_eq!((read.want, read.pos, read.moved), (Ok(()), size - 10, 10));
    assert!(read.src.is_empty());
    let write = rw_plan(&m, &rw_op(Call::Pwrite, 5, 20, UserBuf::Heap));
    assert_eq!((write.want, write.moved), (Ok(()), 20));
    assert_eq!(write.src, ops::data(7, 20));
    // read(2) and write(2) go from the file position.
    let op = rw_op(Call::Read, 5, 20, UserBuf::Heap);
    let at_pos = rw(
        &m,
        &op,
        file(Access::ReadWrite, 30),
        USER_ADDR,
        USER_PTR_MAX,
    )
    .unwrap();
    assert_eq!(at_pos.pos, 30);
}

#[test]
fn rw_errno_order() {
    let m = model();
    let size = (BUF_PAGES * PS) as i64;
    let want =
        |op: &ops::Rw, f: Option<OpenFile>, addr| rw(&m, op, f, addr, USER_PTR_MAX).unwrap().want;
    let rw_file = file(Access::ReadWrite, 0);
    // A negative offset before the file's access.
    let op = rw_op(Call::Pread, -1, 1, UserBuf::Heap);
    assert_eq!(want(&op, None, USER_ADDR), Err(Errno::EINVAL));
    let op = rw_op(Call::Read, 0, 1, UserBuf::Heap);
    assert_eq!(want(&op, None, USER_ADDR), Err(Errno::EBADF));
    assert_eq!(
        want(&op, file(Access::WriteOnly, 0), USER_ADDR),
        Err(Errno::EBADF)
    );
    let op = rw_op(Call::Write, 0, 1, UserBuf::Heap);
    assert_eq!(
        want(&op, file(Access::ReadOnly, 0), USER_ADDR),
        Err(Errno::EBADF)
    );
    // The user range before the length and the position.
    let op = rw_op(Call::Write, 0, 1, UserBuf::Kernel);
    assert_eq!(
        want(&op, rw_file, crate::device::KERNEL_HALF_START),
        Err(Errno::EFAULT)
    );
    let op = rw_op(Call::Read, 0, u64::MAX - 10, UserBuf::Heap);
    assert_eq!(want(&op, rw_file, USER_ADDR), Err(Errno::EFAULT));
    let op = rw_op(Call::Pread, i64::MAX - 10, 100, UserBuf::Heap);
    assert_eq!(want(&op, rw_file, USER_ADDR), Err(Errno::EINVAL));
    // Writing at or past the end: no space; reading there: nothing.
    let op = rw_op(Call::Pwrite, size, 1, UserBuf::Heap);
    assert_eq!(want(&op, rw_file, USER_ADDR), Err(Errno::ENOSPC));
    let op = rw_op(Call::Pwrite, size, 0, UserBuf::Heap);
    assert_eq!(want(&op, rw_file, USER_ADDR), Ok(()));
    let read = rw_plan(&m, &rw_op(Call::Pread, size + 9, 1, UserBuf::Heap));
    assert_eq!((read.want, read.moved), (Ok(()), 0));
}

#[test]
fn rw_with_a_null_buffer_faults_only_when_something_moves() {
    let m = model();
    let size = (BUF_PAGES * PS) as i64;
    let plan = rw(
        &m,
        &rw_op(Call::Pread, 0, 8, UserBuf::Null),
        file(Access::ReadWrite, 0),
        0,
        USER_PTR_MAX,
    )
    .unwrap();
    assert_eq!(plan.want, Err(Errno::EFAULT));
    let plan = rw(
        &m,
        &rw_op(Call::Pread, size, 8, UserBuf::Null),
        file(Access::ReadWrite, 0),
        0,
        USER_PTR_MAX,
    )
    .unwrap();
    assert_eq!((plan.want, plan.moved), (Ok(()), 0));
}

#[test]
fn rw_into_the_arena_stops_at_the_first_page_it_cannot_write() {
    let mut m = model();
    map(&mut m, 8, 1, 3, Prot::RW, false, 5);
    // Reading into the last 100 bytes of page 8, then the placeholder.
    let op = rw_op(Call::Pread, 0, 300, UserBuf::Arena(9 * PS - 100));
    let plan = rw_plan(&m, &op);
    assert_eq!((plan.want, plan.moved), (Ok(()), 100));
    // x86_64 copies exactly up to the placeholder; arm64 may stop a
    // store's width before it, but moves something.
    assert!(plan.cut_short);
    assert!(plan.allows(100, true) && !plan.allows(89, true));
    assert!(plan.allows(100, false) && plan.allows(89, false));
    assert!(!plan.allows(0, false) && !plan.allows(101, false));
    assert_eq!(plan.with_moved(89).moved, 89);
    // From the heap nothing cuts it short: exact everywhere.
    let heap = rw_plan(&m, &rw_op(Call::Pread, 0, 300, UserBuf::Heap));
    assert!(!heap.cut_short && !heap.allows(299, false));
    let write = rw_op(Call::Pwrite, 0, 300, UserBuf::Arena(9 * PS - 100));
    let write = rw_plan(&m, &write);
    assert_eq!(write.with_moved(89).src, write.src[..89]);
    // 100 readable bytes before the placeholder: 32-bit ARM's copy (64-byte
    // blocks) moves some; 8 bytes, it may move none at all.
    assert!(!write.may_copy_nothing(0) && !write.may_copy_nothing(64));
    let short = rw_plan(&m, &rw_op(Call::Pwrite, 0, 300, UserBuf::Arena(9 * PS - 8)));
    assert!(short.may_copy_nothing(64) && !short.may_copy_nothing(0));
    assert!(!heap.may_copy_nothing(64));
    // Nothing writable at all: a fault.
    let op = rw_op(Call::Pread, 0, 300, UserBuf::Arena(10 * PS));
    assert_eq!(rw_plan(&m, &op).want, Err(Errno::EFAULT));
    // A write takes its source from what the mapping shows.
    let op = rw_op(Call::Pwrite, 0, 16, UserBuf::Arena(8 * PS));
    assert_eq!(rw_plan(&m, &op).src, m.shadow[3 * PS..3 * PS + 16]);
}

#[test]
fn rw_between_the_buffer_and_a_mapping_of_the_same_bytes_is_skipped() {
    let mut m = model();
    map(&mut m, 2, 1, 0, Prot::RW, true, 5);
    map(&mut m, 3, 1, 0, Prot::RW, false, 6);
    let from_shared = rw_op(Call::Pwrite, 8, 16, UserBuf::Arena(2 * PS));
    assert_eq!(rw_rule(&m, &from_shared), None);
    let into_shared = rw_op(Call::Pread, 8, 16, UserBuf::Arena(2 * PS));
    assert_eq!(rw_rule(&m, &into_shared), None);
    // A read into a private mapping writes its copy, not the buffer.
    let into_private = rw_op(Call::Pread, 8, 16, UserBuf::Arena(3 * PS));
    assert!(rw_rule(&m, &into_private).is_some());
    // Bytes elsewhere in the buffer are fine.
    let elsewhere = rw_op(Call::Pwrite, (2 * PS) as i64, 16, UserBuf::Arena(2 * PS));
    assert!(rw_rule(&m, &elsewhere).is_some());
    let past = rw_op(Call::Pread, 0, 16, UserBuf::Arena(ARENA_PAGES * PS - 8));
    assert_eq!(rw_rule(&m, &past), None);
}

#[test]
fn rw_changes_the_buffer_or_the_mapping() {
    let mut m = model();
    map(&mut m, 2, 1, 1, Prot::RW, false, 5);
    let op = rw_op(Call::Pwrite, 10, 4, UserBuf::Heap);
    let plan = rw_plan(&m, &op);
    assert!(plan.apply(&mut m, &op).is_empty());
    assert_eq!(&m.shadow[10..14], &ops::data(7, 4)[..]);
    let op = rw_op(Call::Pread, 10, 4, UserBuf::Arena(2 * PS));
    let plan = rw_plan(&m, &op);
    assert_eq!(plan.apply(&mut m, &op), ops::data(7, 4));
    assert_eq!(m.page_bytes(2).unwrap()[..4], ops::data(7, 4)[..]);
    assert_ne!(m.shadow[PS..PS + 4], ops::data(7, 4)[..], "private");
}

const INFO_CMD: u32 = crate::abi::MAPDRV_IOC_INFO;

#[test]
fn ioctl_commands_of_the_vfs_are_skipped() {
    let m = model();
    // FIOCLEX ('T'): the VFS's own, whatever the driver does.
    assert_eq!(ioctl(&m, true, 0x5451, INFO_CMD, UserBuf::Heap), None);
    let plan = ioctl(&m, true, 0x4d02, INFO_CMD, UserBuf::Heap).unwrap();
    assert_eq!((plan.want, plan.written), (Err(Errno::ENOTTY), 0));
}

#[test]
fn ioctl_info_errors() {
    let m = model();
    let plan = |open, arg| ioctl(&m, open, INFO_CMD, INFO_CMD, arg).unwrap();
    assert_eq!(
        plan(false, UserBuf::Heap),
        IoctlPlan {
            want: Err(Errno::EBADF),
            written: 0
        }
    );
    let all = MapdrvInfo::SIZE;
    assert_eq!(
        plan(true, UserBuf::Heap),
        IoctlPlan {
            want: Ok(()),
            written: all
        }
    );
    for arg in [UserBuf::Null, UserBuf::Kernel] {
        assert_eq!(
            plan(true, arg),
            IoctlPlan {
                want: Err(Errno::EFAULT),
                written: 0
            }
        );
    }
}

#[test]
fn ioctl_info_across_the_end_of_a_writable_page_lands_whole_fields() {
    let mut m = model();
    map(&mut m, 4, 1, 0, Prot::RW, true, 5);
    let end = 5 * PS;
    // The whole struct just fits before the end.
    let whole = UserBuf::Arena(end - MapdrvInfo::SIZE);
    let plan = ioctl(&m, true, INFO_CMD, INFO_CMD, UserBuf::Arena(end - 16)).unwrap();
    assert_eq!((plan.want, plan.written), (Err(Errno::EFAULT), 16));
    let plan = ioctl(&m, true, INFO_CMD, INFO_CMD, whole).unwrap();
    assert_eq!((plan.want, plan.written), (Ok(()), MapdrvInfo::SIZE));
    // Not at a field boundary: how much of the field lands is not said.
    assert_eq!(
        ioctl(&m, true, INFO_CMD, INFO_CMD, UserBuf::Arena(end - 12)),
        None
    );
    // Read-only: nothing lands.
    map(&mut m, 4, 1, 0, Prot::R, true, 5);
    let plan = ioctl(&m, true, INFO_CMD, INFO_CMD, whole).unwrap();
    assert_eq!((plan.want, plan.written), (Err(Errno::EFAULT), 0));
    let past = UserBuf::Arena(ARENA_PAGES * PS - 8);
    assert_eq!(ioctl(&m, true, INFO_CMD, INFO_CMD, past), None);
}

/// Arena page 2 maps buffer page 0 shared and writable, page 3 buffer page
/// 1 shared with `prot`, page 4 buffer page 2 private and `MADV_DONTFORK`.
fn fork_model(prot: Prot) -> Model {
    let mut m = model();
    map(&mut m, 2, 1, 0, Prot::RW, true, 5);
    map(&mut m, 3, 1, 1, prot, true, 6);
    map(&mut m, 4, 1, 2, Prot::RW, false, 7);
    if let Some(p) = m.arena[4].as_mut() {
        p.dontfork = true;
    }
    m
}

#[test]
fn a_forked_child_stores_only_where_it_may_write() {
    let m = fork_model(Prot::R);
    let at2 = 2 * PS + 5;
    let writes = [
        (at2, 4, 1),
        (3 * PS, 4, 2),
        (4 * PS, 4, 3),
        (3 * PS - 2, 4, 4),
        (ARENA_PAGES * PS - 2, 4, 5),
    ];
    assert_eq!(fork_stores(&m, &writes), vec![(at2, ops::data(1, 4))]);
}

#[test]
fn a_forked_child_sees_the_parents_pages_less_dontfork_ones() {
    let m = fork_model(Prot::NONE);
    assert_eq!(child_view(&m, 2 * PS + 1), ChildView::Same);
    assert_eq!(child_view(&m, 3 * PS), ChildView::Nothing);
    assert_eq!(child_view(&m, 4 * PS + 9), ChildView::Absent(4));
    assert_eq!(child_view(&m, 0), ChildView::Nothing);
    assert_eq!(child_view(&m, ARENA_PAGES * PS), ChildView::Nothing);
}

#[test]
fn a_childs_stores_reach_the_parent_through_shared_pages_only() {
    let mut m = model();
    map(&mut m, 2, 1, 0, Prot::RW, true, 5);
    map(&mut m, 3, 1, 1, Prot::RW, false, 6);
    let before = m.shadow.clone();
    apply_child_stores(
        &mut m,
        &[(2 * PS + 1, vec![0xaa, 0xbb]), (3 * PS, vec![0xcc])],
    );
    assert_eq!(&m.shadow[1..3], &[0xaa, 0xbb]);
    assert_eq!(m.shadow[PS], before[PS]);
    assert!(m.arena[3].as_ref().unwrap().cow.is_none());
}

#[test]
fn a_full_comparison_loads_the_readable_pages() {
    let mut m = model();
    map(&mut m, 2, 2, 0, Prot::R, true, 5);
    map(&mut m, 6, 1, 0, Prot::NONE, true, 6);
    assert_eq!(readable_pages(&m), vec![2, 3]);
}

#[test]
fn info_fields_come_from_the_abi_struct() {
    // The fields tile the struct: an answer cut at a field boundary is
    // a prefix of the whole answer.
    let mut end = 0;
    for (off, len) in MapdrvInfo::FIELDS {
        assert_eq!(off, end);
        end += len;
    }
    assert_eq!(end, MapdrvInfo::SIZE);
}
