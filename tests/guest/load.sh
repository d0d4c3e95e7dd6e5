#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Loading and unloading the module: insmod, /proc/modules, /sys/module, the
# misc device, the kernel log lines of load and unload, rmmod, and a second
# load after the unload.
# kernels: vm debug arm64 arm
# shellcheck source=lib.sh
. /tests/lib.sh

# What the module logs when it is loaded and unloaded (extended regexes, on
# dmesg lines).
LOAD_RE='rust_mapdrv: (.* )?loaded'
UNLOAD_RE='rust_mapdrv: (.* )?unloaded'
# Taint flags the module may set in /sys/module/rust_mapdrv/taint: O for an
# out-of-tree module, N for one with KUnit tests.
TAINT_RE='^[ON]+$'

require "module file is there" "$MODULE"

dmesg_mark
check "insmod loads the module" insmod "$MODULE" || finish
check "module is listed in /proc/modules" module_loaded
check "module is in /sys/module" test -d "/sys/module/$MODNAME"
expect_match "module taints only as out-of-tree or test" "$TAINT_RE" cat "/sys/module/$MODNAME/taint"
expect_match "dmesg has the load line" "$LOAD_RE" dmesg_new
expect_match "dmesg lines carry the module prefix" "^(\[[ 0-9.]+\] )?$MODNAME: " dmesg_new
expect_match "misc device is listed in /proc/misc" ' mapdrv$' cat /proc/misc
check "the device node /dev/mapdrv is there" test -c /dev/mapdrv

dmesg_mark
check "rmmod removes the module" rmmod "$MODNAME"
expect_fail "module is gone from /proc/modules" module_loaded
expect_fail "module is gone from /sys/module" test -e "/sys/module/$MODNAME"
expect_fail "the device node /dev/mapdrv is gone" test -e /dev/mapdrv
expect_match "dmesg has the unload line" "$UNLOAD_RE" dmesg_new

dmesg_mark
check "module loads again after an unload" insmod "$MODULE"
expect_match "dmesg has the load line again" "$LOAD_RE" dmesg_new
check "module unloads again" rmmod "$MODNAME"
module_unload_all
finish
