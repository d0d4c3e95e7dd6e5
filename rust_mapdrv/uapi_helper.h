/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What bindgen reads to write rust_mapdrv/uapi_generated.rs (see Kbuild):
 * the device's C header, plus the values bindgen cannot evaluate as macros.
 * Function-like macros such as _IOR() are invisible to bindgen, but the
 * value of a constant initialised with one is not; the prefix is removed
 * after generation, as the kernel does for its own bindings.
 */
#include "../userspace/include/mapdrv.h"

const __u32 RUST_CONST_HELPER_MAPDRV_IOC_INFO = MAPDRV_IOC_INFO;
