#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make gdb: the VM with a debuggable kernel, the module loaded, and QEMU's gdb
# stub listening on 127.0.0.1:1234; prints the gdb command that attaches with
# the kernel's lx- helpers and the module's symbols.
#
# Usage: scripts/gdb.sh TOOL [run-vm.sh options]
#   Builds (once, cached) the `gdb` kernel flavour: the VM kernel plus debug
#   info and CONFIG_GDB_SCRIPTS (scripts/kconfig/gdb.config), and the module
#   against it in $MAPDRV_CACHE/gdb/module (the tree's own rust_mapdrv.ko is
#   for the plain VM kernel and stays as it is).
source "$(dirname "$0")/lib.sh"

tool=${1:?usage: scripts/gdb.sh TOOL [run-vm options]}
shift
bash "$MAPDRV_ROOT/scripts/setup.sh" >&2
kdir=$(bash "$MAPDRV_ROOT/scripts/build-kernel.sh" gdb)
moddir=$MAPDRV_CACHE/gdb/module
# A copy of the module's sources, so that this build has its own objects.
stage "building rust_mapdrv.ko for the gdb kernel"
run_logged "$MAPDRV_CACHE/logs/gdb-module.log" \
	bash "$MAPDRV_ROOT/scripts/build-module.sh" --kdir "$kdir" --copy-to "$moddir" modules

# gdb does not take Rust generic paths in `break`; a file:line does, and
# covers every instance of the generic fault trampoline.
fault_line=$(grep -n 'H::fault(data' "$MAPDRV_ROOT/rust_mapdrv/vm_ops.rs" | cut -d: -f1)
cat >&2 <<MSG

In another terminal, attach gdb (Debian's gdb; the kernel's lx- helpers load
from $kdir/vmlinux-gdb.py):

  gdb -q -iex 'add-auto-load-safe-path $kdir' $kdir/vmlinux \\
      -ex 'target remote 127.0.0.1:1234' -ex 'lx-symbols $moddir'

lx-symbols loads the symbols of rust_mapdrv.ko (and reloads them whenever a
module is loaded). Then for example:
  (gdb) lx-lsmod
  (gdb) info functions VmOps
  (gdb) break rust_mapdrv/vm_ops.rs:$fault_line   # where every fault enters our handler
  (gdb) continue            # then run 'mapdrv dump' in the VM
  (gdb) bt                  # ... __do_fault, do_read_fault, handle_mm_fault
  (gdb) lx-dmesg

The VM's shell follows; 'exit' (or Ctrl-A X) stops it.
MSG
exec bash "$MAPDRV_ROOT/scripts/run-vm.sh" --gdb --shell "$@" \
	--kernel "$kdir/arch/x86/boot/bzImage" --add "$moddir/rust_mapdrv.ko" --add "$tool:/bin/mapdrv" \
	-- 'insmod /lib/modules/rust_mapdrv.ko && echo "rust_mapdrv loaded; gdb stub on 127.0.0.1:1234"'
