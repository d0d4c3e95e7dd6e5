/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * mapdrv.h - the user-space interface of the rust_mapdrv module (/dev/mapdrv).
 *
 * This header is the one source of the device's ABI. C programs include it
 * as is. The module is built from it: Kbuild runs bindgen on it
 * (rust_mapdrv/uapi_helper.h) and rust_mapdrv/uapi.rs checks at compile time
 * what the module relies on. The Rust tool mirrors it in userspace/src/abi.rs,
 * and a test compiles this header to check that both agree byte for byte;
 * tests/host/abi.sh changes a copy of it to show that both checks fail.
 */
#ifndef MAPDRV_H
#define MAPDRV_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define MAPDRV_DEVICE "/dev/mapdrv"

/* Values of the `mode` module parameter and of mapdrv_info.mode. */
#define MAPDRV_MODE_FAULT       0 /* one page per fault, like the classic nopage driver */
#define MAPDRV_MODE_FAULTAROUND 1 /* each fault also maps a batch of neighbouring pages */
#define MAPDRV_MODE_PREFAULT    2 /* every page inserted at mmap time */
#define MAPDRV_MODE_HUGE        3 /* 2 MiB entries where the mapping allows, else one page per fault */

/* Limits of the module parameters `pages` and `faultaround_pages`. */
#define MAPDRV_MAX_PAGES            262144 /* 1 GiB of 4 KiB pages */
#define MAPDRV_MAX_FAULTAROUND_PAGES   512 /* one page table's worth of entries */

/* Answer of MAPDRV_IOC_INFO. Fixed layout: 24 bytes, no padding. */
struct mapdrv_info {
	__u64 size;      /* buffer size in bytes (pages * page_size) */
	__u64 pages;     /* buffer size in pages */
	__u32 page_size; /* PAGE_SIZE of the kernel */
	__u32 mode;      /* MAPDRV_MODE_* used for new mappings */
};

#define MAPDRV_IOC_MAGIC 'M'
#define MAPDRV_IOC_INFO  _IOR(MAPDRV_IOC_MAGIC, 1, struct mapdrv_info)

#endif /* MAPDRV_H */
