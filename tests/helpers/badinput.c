// SPDX-License-Identifier: GPL-2.0
/*
 * badinput: the bad-input matrix of /dev/mapdrv at the system-call level.
 * Each case makes one call (or a short sequence) with an edge or bad
 * argument, checks the exact return value or errno, and then checks that the
 * buffer holds exactly what it held before (pread of the whole buffer).
 * Prints "PASS: <prefix><case>" or "FAIL: <prefix><case>: <why>" per case,
 * in the format of tests/guest/lib.sh, and "# cases N" at the end.
 *
 * Usage: badinput [PREFIX]   (the module must be loaded; run as root)
 * Exit status: 0 when every case passed, 1 otherwise, 2 when it cannot start.
 */
#define _GNU_SOURCE
/* A 64-bit off_t on 32-bit ARM too (mmap64, pread64, lseek64), so that the
 * offsets below reach the kernel as written; no change on 64-bit. */
#define _FILE_OFFSET_BITS 64
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../userspace/include/mapdrv.h"

#define DEVICE "/dev/mapdrv"
/*
 * Per architecture: the size of the user address space that mmap places
 * mappings in (USER_SPACE_SIZE), how many bytes short of a fault a user
 * copy may stop (COPY_FAULT_SLACK, see expect_short), an address in the
 * kernel's part (KERNEL_ADDR); and where the kernel's unsigned long
 * arithmetic wraps (ULONG_WRAP_TEXT, for a case's name).
 */
#if defined(__aarch64__)
#define USER_SPACE_SIZE (1UL << 48)
#define COPY_FAULT_SLACK 64
#define KERNEL_ADDR ((void *)0xffff800000000000UL)
#elif defined(__arm__)
/* TASK_SIZE of the 3G/1G split (PAGE_OFFSET 0xc0000000 less the 16 MiB of
 * modules): user space is below it, the kernel's lowmem at PAGE_OFFSET. */
#define USER_SPACE_SIZE 0xbf000000UL
/* Its copy routines move blocks of 32 bytes (ldm/stm of eight registers)
 * and may stop before the block that faults. */
#define COPY_FAULT_SLACK 64
#define KERNEL_ADDR ((void *)0xc0000000UL)
#else
#define USER_SPACE_SIZE (1UL << 47)
#define COPY_FAULT_SLACK 0
#define KERNEL_ADDR ((void *)0xffff800000000000UL)
#endif
#if ULONG_MAX > 0xffffffffUL
#define ULONG_WRAP_TEXT "2^64"
#else
#define ULONG_WRAP_TEXT "2^32"
#endif

static const char *prefix = "";
static int fd_rw, fd_ro, fd_wo;
static size_t ps, size;
static unsigned char *snapshot, *scratch;
static int passed, failed;

/*
 * The calls with deliberately bad arguments go through syscall(2), so that
 * the C library and the compiler's checks pass them to the kernel as they are.
 * 32-bit ARM's EABI passes the 64-bit offset in an even register pair (r4,
 * r5): r3 is padding, and the halves go as two longs, low first.
 */
#if defined(__arm__)
#define OFF64_ARGS(off) 0L, (long)(uint32_t)(uint64_t)(off), (long)((uint64_t)(off) >> 32)
#else
#define OFF64_ARGS(off) (off)
#endif

static long raw_pread(int fd, void *buf, size_t len, int64_t off)
{
	return syscall(SYS_pread64, fd, buf, len, OFF64_ARGS(off));
}

static long raw_pwrite(int fd, const void *buf, size_t len, int64_t off)
{
	return syscall(SYS_pwrite64, fd, buf, len, OFF64_ARGS(off));
}

/*
 * A length far beyond the buffer that the kernel still takes (access_ok
 * passes it, and it is a positive ssize_t), so the driver moves what the
 * buffer has: 2^40 on 64-bit, SSIZE_MAX on 32-bit, but never past the top
 * of user space from `buf` (less a page: x86_64 takes an end at most
 * TASK_SIZE_MAX - PAGE_SIZE). A destination that malloc placed with mmap
 * sits near that top, so a fixed 2^40 would be refused there with EFAULT
 * (arm64, and x86_64 when the layout put it there).
 */
#if ULONG_MAX > 0xffffffffUL
#define HUGE_LEN_TEXT "up to 2^40 bytes"
#define HUGE_LEN_MAX (1UL << 40)
#else
#define HUGE_LEN_TEXT "up to SSIZE_MAX bytes"
#define HUGE_LEN_MAX ((size_t)SSIZE_MAX)
#endif
static size_t huge_len(const void *buf)
{
	size_t room = USER_SPACE_SIZE - ps - (uintptr_t)buf;

	return room < HUGE_LEN_MAX ? room : HUGE_LEN_MAX;
}

/* What a call did: its return value, or -1 and its errno. */
struct outcome {
	long ret;
	int err;
};

static struct outcome result(long ret)
{
	struct outcome o = { ret, ret < 0 ? errno : 0 };
	return o;
}

static struct outcome map_result(void *p)
{
	struct outcome o = { p == MAP_FAILED ? -1 : 0, p == MAP_FAILED ? errno : 0 };
	/* The address, as a success (>= 0): 1 for one above LONG_MAX (32-bit
	 * ARM's user space reaches past 2 GiB), which a long cannot show. */
	if (p != MAP_FAILED)
		o.ret = (uintptr_t)p <= LONG_MAX ? (long)(uintptr_t)p : 1;
	return o;
}

static void report(const char *name, const char *fmt, ...)
{
	if (!fmt) {
		passed++;
		printf("PASS: %s%s\n", prefix, name);
		return;
	}
	va_list ap;
	failed++;
	printf("FAIL: %s%s: ", prefix, name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* Reads the whole buffer into `dst` with pread; 0 on success. */
static int read_buffer(unsigned char *dst)
{
	size_t done = 0;
	while (done < size) {
		ssize_t n = pread(fd_rw, dst + done, size - done, done);
		if (n <= 0)
			return -1;
		done += n;
	}
	return 0;
}

/* "" when the buffer is as in the snapshot, else where it differs. */
static const char *buffer_changed(void)
{
	static char why[160];
	if (read_buffer(scratch))
		return "the buffer cannot be read back";
	for (size_t i = 0; i < size; i++) {
		if (scratch[i] != snapshot[i]) {
			snprintf(why, sizeof(why), "the buffer changed: byte %#zx is %#04x, was %#04x",
				 i, scratch[i], snapshot[i]);
			return why;
		}
	}
	return "";
}

/*
 * expect: the case `name` returned `o`; it had to fail with `want_errno`
 * (when not 0) or return `want_ret`. And the buffer must be unchanged.
 */
static void expect(const char *name, struct outcome o, int want_errno, long want_ret)
{
	const char *changed = buffer_changed();
	if (want_errno) {
		if (o.ret >= 0 || o.err != want_errno)
			return report(name, "returned %ld (%s), expected %s", o.ret,
				      o.ret < 0 ? strerrorname_np(o.err) : "success",
				      strerrorname_np(want_errno));
	} else if (o.ret != want_ret) {
		return report(name, "returned %ld (%s), expected %ld", o.ret,
			      o.ret < 0 ? strerrorname_np(o.err) : "no error", want_ret);
	}
	if (*changed)
		return report(name, "%s", changed);
	report(name, NULL);
}

/*
 * A call that must return between want_ret - slack and want_ret: a copy
 * from user memory that faults part-way stops at the fault on x86_64, but
 * arm64's copy routines copy in blocks and may stop up to 64 bytes before
 * it (the short count they return is still exact for what was copied).
 */
static void expect_short(const char *name, struct outcome o, long want_ret, long slack)
{
	if (o.ret < want_ret - slack || o.ret > want_ret || o.ret <= 0)
		return report(name, "returned %ld (%s), expected %ld%s", o.ret,
			      o.ret < 0 ? strerrorname_np(o.err) : "no error", want_ret,
			      slack ? " or up to that many bytes fewer" : "");
	expect(name, o, 0, o.ret);
}

/* An mmap that must fail with `want`; unmaps it if it did not. */
static void mmap_refused(const char *name, size_t len, int prot, int flags, int fd, off_t off,
			 int want)
{
	void *p = mmap(NULL, len, prot, flags, fd, off);
	struct outcome o = map_result(p);
	if (p != MAP_FAILED)
		munmap(p, len);
	expect(name, o, want, 0);
}

/* A mapping of the whole buffer (or dies). */
static void *map_all(int prot, int flags, int fd)
{
	void *p = mmap(NULL, size, prot, flags, fd, 0);
	if (p == MAP_FAILED) {
		printf("FAIL: %smapping the buffer for a case: %s\n", prefix, strerror(errno));
		exit(1);
	}
	return p;
}

/* Two pages: the first read-write, the second PROT_NONE (or dies). */
static unsigned char *edge_pages(int first_prot)
{
	unsigned char *p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || mprotect(p + ps, ps, PROT_NONE) ||
	    mprotect(p, ps, first_prot)) {
		printf("FAIL: %ssetting up memory for a case: %s\n", prefix, strerror(errno));
		exit(1);
	}
	return p;
}

static void mmap_cases(void)
{
	const off_t end = size;
	const unsigned long top = (ULONG_MAX - ps) & ~(ps - 1);

	mmap_refused("mmap offset = size is refused with EINVAL", ps, PROT_READ, MAP_SHARED,
		     fd_rw, end, EINVAL);
	mmap_refused("mmap offset = size + 1 page is refused with EINVAL", ps, PROT_READ,
		     MAP_SHARED, fd_rw, end + ps, EINVAL);
	mmap_refused("mmap of the last page with 2 pages is refused with EINVAL", 2 * ps,
		     PROT_READ, MAP_SHARED, fd_rw, end - ps, EINVAL);
	mmap_refused("mmap of size + 1 page is refused with EINVAL", size + ps, PROT_READ,
		     MAP_SHARED, fd_rw, 0, EINVAL);
	mmap_refused("mmap at the largest page offset is refused by the driver with EINVAL", ps,
		     PROT_READ, MAP_SHARED, fd_rw, (off_t)top, EINVAL);
	mmap_refused("mmap with offset + length wrapping " ULONG_WRAP_TEXT
		     " is refused with EOVERFLOW",
		     2 * ps, PROT_READ, MAP_SHARED, fd_rw, (off_t)top, EOVERFLOW);
	mmap_refused("mmap at an unaligned offset is refused with EINVAL", ps, PROT_READ,
		     MAP_SHARED, fd_rw, 1, EINVAL);
	mmap_refused("mmap of length 0 is refused with EINVAL", 0, PROT_READ, MAP_SHARED, fd_rw, 0,
		     EINVAL);
	mmap_refused("mmap of length SIZE_MAX (page rounding overflows) is refused with ENOMEM",
		     SIZE_MAX, PROT_READ, MAP_SHARED, fd_rw, 0, ENOMEM);
	/* The whole user address space: 2^47 bytes on x86_64 (4-level paging;
	 * 5-level keeps mmap below 2^47 unless asked), 2^48 on arm64 (its
	 * default mmap window whatever the kernel's VA size), TASK_SIZE on
	 * 32-bit ARM (no room that large with anything mapped). The core
	 * refuses it before the driver is asked. */
	mmap_refused("mmap of the whole user address space is refused with ENOMEM",
		     USER_SPACE_SIZE, PROT_READ, MAP_SHARED, fd_rw, 0, ENOMEM);
	mmap_refused("mmap PROT_EXEC shared is refused with EPERM", ps, PROT_READ | PROT_EXEC,
		     MAP_SHARED, fd_rw, 0, EPERM);
	mmap_refused("mmap PROT_EXEC private is refused with EPERM", ps, PROT_READ | PROT_EXEC,
		     MAP_PRIVATE, fd_rw, 0, EPERM);
	mmap_refused("mmap PROT_WRITE MAP_SHARED of an O_RDONLY fd is refused with EACCES", ps,
		     PROT_READ | PROT_WRITE, MAP_SHARED, fd_ro, 0, EACCES);
	mmap_refused("mmap of an O_WRONLY fd is refused with EACCES", ps, PROT_READ, MAP_SHARED,
		     fd_wo, 0, EACCES);
	mmap_refused("mmap MAP_SHARED_VALIDATE with MAP_SYNC is refused with EOPNOTSUPP", ps,
		     PROT_READ, MAP_SHARED_VALIDATE | MAP_SYNC, fd_rw, 0, EOPNOTSUPP);
	mmap_refused("mmap MAP_HUGETLB is refused with EINVAL", ps, PROT_READ,
		     MAP_PRIVATE | MAP_HUGETLB, fd_rw, 0, EINVAL);
	mmap_refused("mmap MAP_GROWSDOWN is refused with EINVAL", ps, PROT_READ,
		     MAP_PRIVATE | MAP_GROWSDOWN, fd_rw, 0, EINVAL);
	mmap_refused("mmap neither shared nor private is refused with EINVAL", ps, PROT_READ, 0,
		     fd_rw, 0, EINVAL);
	expect("mmap MAP_FIXED at an unaligned address is refused with EINVAL",
	       map_result(mmap((void *)(0x10000000UL + 1), ps, PROT_READ, MAP_SHARED | MAP_FIXED,
			       fd_rw, 0)),
	       EINVAL, 0);
	mmap_refused("mmap of a closed fd is refused with EBADF", ps, PROT_READ, MAP_SHARED, 1000,
		     0, EBADF);

	/* MAP_PRIVATE on a read-only file may be written: copy on write. */
	unsigned char *p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd_ro, 0);
	struct outcome o = map_result(p);
	if (p != MAP_FAILED) {
		memset(p, 0xa5, ps);
		o.ret = p[0] == 0xa5 && p[ps - 1] == 0xa5 ? 0 : -2;
		munmap(p, ps);
	}
	expect("mmap PROT_WRITE MAP_PRIVATE of an O_RDONLY fd works and its writes stay private",
	       o, 0, 0);

	p = map_all(PROT_READ, MAP_SHARED, fd_rw);
	expect("mprotect PROT_EXEC of a mapping is refused with EACCES",
	       result(mprotect(p, ps, PROT_READ | PROT_EXEC)), EACCES, 0);
	expect("mremap growing a shared mapping is refused with EFAULT",
	       map_result(mremap(p, size, size + ps, MREMAP_MAYMOVE)), EFAULT, 0);
	expect("mremap duplicating a shared mapping (old size 0) is refused with EFAULT",
	       map_result(mremap(p, 0, ps, MREMAP_MAYMOVE)), EFAULT, 0);
	munmap(p, size);

	p = map_all(PROT_READ, MAP_SHARED, fd_ro);
	expect("mprotect PROT_WRITE of a shared mapping of an O_RDONLY fd is refused with EACCES",
	       result(mprotect(p, ps, PROT_READ | PROT_WRITE)), EACCES, 0);
	expect("madvise MADV_REMOVE of a read-only shared mapping is refused with EACCES",
	       result(madvise(p, ps, MADV_REMOVE)), EACCES, 0);
	munmap(p, size);

	p = map_all(PROT_READ, MAP_PRIVATE, fd_rw);
	expect("mremap growing a private mapping is refused with EFAULT",
	       map_result(mremap(p, size, size + ps, MREMAP_MAYMOVE)), EFAULT, 0);
	expect("mremap duplicating a private mapping (old size 0) is refused with EINVAL",
	       map_result(mremap(p, 0, ps, MREMAP_MAYMOVE)), EINVAL, 0);
	munmap(p, size);

	p = map_all(PROT_READ | PROT_WRITE, MAP_SHARED, fd_rw);
	expect("madvise MADV_REMOVE of a shared writable mapping is refused with ENODEV",
	       result(madvise(p, ps, MADV_REMOVE)), ENODEV, 0);
	expect("madvise MADV_DONTFORK of a mapping works", result(madvise(p, ps, MADV_DONTFORK)),
	       0, 0);
	expect("madvise MADV_DOFORK of a driver mapping is refused with EINVAL",
	       result(madvise(p, ps, MADV_DOFORK)), EINVAL, 0);
	expect("madvise MADV_DONTNEED of a shared mapping leaves the buffer alone",
	       result(madvise(p, size, MADV_DONTNEED)), 0, 0);
	munmap(p, size);
}

static void rw_cases(void)
{
	unsigned char b[16];
	unsigned char *big = malloc(size);
	unsigned char *edge;

	if (!big)
		exit(2);
	expect("pread at the end returns 0", result(raw_pread(fd_rw, b, sizeof(b), size)), 0, 0);
	expect("pread past the end returns 0", result(raw_pread(fd_rw, b, sizeof(b), size + 4096)),
	       0, 0);
	expect("pread of 0 bytes returns 0", result(raw_pread(fd_rw, b, 0, 0)), 0, 0);
	expect("pread crossing the end is short", result(raw_pread(fd_rw, b, 2, size - 1)), 0, 1);
	expect("pread at a negative offset is refused with EINVAL",
	       result(raw_pread(fd_rw, b, 1, -1)), EINVAL, 0);
	expect("pread whose offset + length overflows is refused with EINVAL",
	       result(raw_pread(fd_rw, b, 100, LLONG_MAX - 10)), EINVAL, 0);
	expect("pread of " HUGE_LEN_TEXT " returns the whole buffer",
	       result(raw_pread(fd_rw, big, huge_len(big), 0)), 0, (long)size);
	expect("pread of SIZE_MAX bytes is refused with EFAULT",
	       result(raw_pread(fd_rw, big, SIZE_MAX, 0)), EFAULT, 0);
	expect("pread into NULL is refused with EFAULT", result(raw_pread(fd_rw, NULL, 16, 0)),
	       EFAULT, 0);
	expect("pread into a kernel address is refused with EFAULT",
	       result(raw_pread(fd_rw, KERNEL_ADDR, 16, 0)), EFAULT, 0);
	edge = edge_pages(PROT_READ);
	expect("pread into read-only memory is refused with EFAULT",
	       result(raw_pread(fd_rw, edge, 16, 0)), EFAULT, 0);
	munmap(edge, 2 * ps);
	edge = edge_pages(PROT_READ | PROT_WRITE);
	expect("pread into memory that ends in an inaccessible page is short",
	       result(raw_pread(fd_rw, edge, 2 * ps, 0)), 0, (long)ps);
	expect("pread into it returns the buffer's bytes", result(memcmp(edge, snapshot, ps)), 0,
	       0);

	expect("pwrite at the end is refused with ENOSPC", result(raw_pwrite(fd_rw, b, 1, size)),
	       ENOSPC, 0);
	expect("pwrite past the end is refused with ENOSPC",
	       result(raw_pwrite(fd_rw, b, 1, size + 4096)), ENOSPC, 0);
	expect("pwrite of 0 bytes at the end returns 0", result(raw_pwrite(fd_rw, b, 0, size)), 0, 0);
	b[0] = snapshot[size - 1];
	b[1] = (unsigned char)~snapshot[0];
	expect("pwrite crossing the end is short (writes only the last byte)",
	       result(raw_pwrite(fd_rw, b, 2, size - 1)), 0, 1);
	expect("pwrite from NULL is refused with EFAULT", result(raw_pwrite(fd_rw, NULL, 16, 0)),
	       EFAULT, 0);
	expect("pwrite from a kernel address is refused with EFAULT",
	       result(raw_pwrite(fd_rw, KERNEL_ADDR, 16, 0)), EFAULT, 0);
	expect("pwrite at a negative offset is refused with EINVAL",
	       result(raw_pwrite(fd_rw, b, 1, -1)), EINVAL, 0);
	expect("pwrite of SIZE_MAX bytes is refused with EFAULT",
	       result(raw_pwrite(fd_rw, big, SIZE_MAX, 0)), EFAULT, 0);
	/* The source: page 0 as it is, then an inaccessible page. */
	memcpy(edge, snapshot, ps);
	expect_short("pwrite from memory that ends in an inaccessible page writes what it can",
		     result(raw_pwrite(fd_rw, edge, 2 * ps, 0)), (long)ps, COPY_FAULT_SLACK);
	munmap(edge, 2 * ps);

	struct iovec iov[2] = { { b, 8 }, { NULL, 8 } };
	expect("preadv with a bad second iovec is short", result(preadv(fd_rw, iov, 2, 0)), 0, 8);
	memcpy(b, snapshot, 8);
	expect("pwritev with a bad second iovec writes the first",
	       result(pwritev(fd_rw, iov, 2, 0)), 0, 8);

	expect("write on an O_RDONLY fd is refused with EBADF", result(write(fd_ro, b, 1)), EBADF,
	       0);
	expect("read on an O_WRONLY fd is refused with EBADF", result(read(fd_wo, b, 1)), EBADF,
	       0);
	expect("lseek is refused with ESPIPE", result(lseek(fd_rw, 0, SEEK_SET)), ESPIPE, 0);

	/* read(2) and write(2) at the file position, after reading to the end. */
	int fd = open(DEVICE, O_RDWR);
	size_t got = 0;
	ssize_t n;
	while ((n = read(fd, big, size)) > 0)
		got += n;
	expect("read(2) through the whole buffer returns its size", result((long)got), 0,
	       (long)size);
	expect("read(2) at the end of the file position returns 0", result(read(fd, b, 1)), 0, 0);
	expect("write(2) at the end of the file position is refused with ENOSPC",
	       result(write(fd, b, 1)), ENOSPC, 0);
	close(fd);
	free(big);
}

static void ioctl_cases(void)
{
	struct mapdrv_info info;
	unsigned char *edge;
	const struct {
		const char *name;
		unsigned long cmd;
	} unknown[] = {
		{ "ioctl _IOR('M', 2, struct mapdrv_info) is refused with ENOTTY",
		  _IOR(MAPDRV_IOC_MAGIC, 2, struct mapdrv_info) },
		{ "ioctl _IO('M', 0) is refused with ENOTTY", _IO(MAPDRV_IOC_MAGIC, 0) },
		{ "ioctl _IOWR('M', 1, struct mapdrv_info) is refused with ENOTTY",
		  _IOWR(MAPDRV_IOC_MAGIC, 1, struct mapdrv_info) },
		{ "ioctl _IOR('M', 1, u32) (wrong size) is refused with ENOTTY",
		  _IOR(MAPDRV_IOC_MAGIC, 1, uint32_t) },
		{ "ioctl command 0 is refused with ENOTTY", 0 },
		{ "ioctl command 0xffffffff is refused with ENOTTY", 0xffffffffUL },
		{ "ioctl TCGETS is refused with ENOTTY", 0x5401 },
	};

	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		expect(unknown[i].name, result(ioctl(fd_rw, unknown[i].cmd, &info)), ENOTTY, 0);
	expect("ioctl INFO to NULL is refused with EFAULT",
	       result(ioctl(fd_rw, MAPDRV_IOC_INFO, NULL)), EFAULT, 0);
	expect("ioctl INFO to a kernel address is refused with EFAULT",
	       result(ioctl(fd_rw, MAPDRV_IOC_INFO, KERNEL_ADDR)), EFAULT, 0);
	edge = edge_pages(PROT_READ);
	expect("ioctl INFO to read-only memory is refused with EFAULT",
	       result(ioctl(fd_rw, MAPDRV_IOC_INFO, edge)), EFAULT, 0);
	munmap(edge, 2 * ps);
	edge = edge_pages(PROT_READ | PROT_WRITE);
	expect("ioctl INFO across the end of writable memory is refused with EFAULT",
	       result(ioctl(fd_rw, MAPDRV_IOC_INFO, edge + ps - 8)), EFAULT, 0);
	munmap(edge, 2 * ps);
	memset(&info, 0, sizeof(info));
	struct outcome o = result(ioctl(fd_ro, MAPDRV_IOC_INFO, &info));
	if (o.ret == 0 && info.size != size)
		o.ret = -2;
	expect("ioctl INFO on an O_RDONLY fd answers the size", o, 0, 0);
	o = result(ioctl(fd_wo, MAPDRV_IOC_INFO, &info));
	expect("ioctl INFO on an O_WRONLY fd answers", o, 0, 0);

	/* The answer written into a shared mapping of the buffer itself: the
	 * buffer changes by exactly those 24 bytes, which are then put back. */
	unsigned char *p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd_rw, 0);
	const char *name = "ioctl INFO into a shared mapping of the device writes exactly the answer";
	if (p == MAP_FAILED)
		return report(name, "mmap: %s", strerror(errno));
	o = result(ioctl(fd_rw, MAPDRV_IOC_INFO, p));
	struct mapdrv_info want;
	ioctl(fd_rw, MAPDRV_IOC_INFO, &want);
	int ok = o.ret == 0 && read_buffer(scratch) == 0 &&
		 memcmp(scratch, &want, sizeof(want)) == 0 &&
		 memcmp(scratch + sizeof(want), snapshot + sizeof(want), size - sizeof(want)) == 0;
	memcpy(p, snapshot, sizeof(want));
	munmap(p, ps);
	if (!ok)
		report(name, "returned %ld; the buffer does not hold exactly the answer", o.ret);
	else
		expect(name, o, 0, 0); /* also: restored */
}

int main(int argc, char **argv)
{
	if (argc > 1)
		prefix = argv[1];
	ps = sysconf(_SC_PAGESIZE);
	fd_rw = open(DEVICE, O_RDWR);
	fd_ro = open(DEVICE, O_RDONLY);
	fd_wo = open(DEVICE, O_WRONLY);
	if (fd_rw < 0 || fd_ro < 0 || fd_wo < 0) {
		perror("badinput: open " DEVICE);
		return 2;
	}
	struct mapdrv_info info;
	if (ioctl(fd_rw, MAPDRV_IOC_INFO, &info)) {
		perror("badinput: MAPDRV_IOC_INFO");
		return 2;
	}
	size = info.size;
	snapshot = malloc(size);
	scratch = malloc(size);
	if (!snapshot || !scratch || read_buffer(snapshot)) {
		perror("badinput: reading the buffer");
		return 2;
	}
	mmap_cases();
	rw_cases();
	ioctl_cases();
	printf("# cases %d (%d passed, %d failed)\n", passed + failed, passed, failed);
	return failed ? 1 : 0;
}
