# SPDX-License-Identifier: GPL-2.0
#
# rust-mapdrv: the two commands a newcomer needs are
#   make run    set up everything, boot a VM, load the module, show it working
#   make test   the same, plus the whole test suite (also on a debug kernel),
#               on every architecture (x86_64, arm64, arm)
#   make bench  the module's modes against the kernel's own paths, as tables
#   make soak   fuzz and stress on the debug kernel, long, with new seeds
#
# Everything downloaded or built outside this tree lives in the cache,
# ${MAPDRV_CACHE:-~/.cache/rust-mapdrv} (make distclean removes it).
# KDIR=/path/to/tree builds the module against your own Rust-enabled kernel.
# ARCH=arm64 does it all for arm64 (qemu-system-aarch64 -M virt, TCG), ARCH=arm
# for 32-bit ARM with highmem (qemu-system-arm -M virt, TCG); the default is
# x86_64; make test without ARCH tests all three.

SHELL := /bin/bash
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
export MAPDRV_CACHE ?= $(HOME)/.cache/rust-mapdrv

# The architecture: ARCH as the kernel spells it (x86_64, x86, arm64...),
# checked and named by scripts/lib.sh's mapdrv_arch.
MAPDRV_ARCH := $(shell source $(ROOT)/scripts/lib.sh && mapdrv_arch $(ARCH))
ifeq ($(MAPDRV_ARCH),)
$(error ARCH=$(ARCH) is not an architecture this project builds (see above))
endif
export MAPDRV_ARCH
# make bench ICOUNT=1: times in guest instructions (see the bench target).
ifneq ($(filter-out 0 1,$(ICOUNT)),)
$(error ICOUNT takes 1 (times in guest instructions) or 0, not '$(ICOUNT)')
endif
# make test without ARCH tests every architecture; with it, that one.
TEST_ARCHES := $(if $(ARCH),$(MAPDRV_ARCH),x86_64 arm64 arm)

KDIR_ARG = $(if $(KDIR),--kdir $(KDIR))
# Per architecture: x86_64's module is built in the tree, another's in a
# copy under build/ARCH (so that neither replaces the other's objects).
MODULE_x86_64 := $(ROOT)/rust_mapdrv.ko
MODULE_arm64 := $(ROOT)/build/arm64/rust_mapdrv.ko
MODULE_arm := $(ROOT)/build/arm/rust_mapdrv.ko
MODULE := $(MODULE_$(MAPDRV_ARCH))
MODULE_COPY = $(if $(filter-out x86_64,$(MAPDRV_ARCH)),--copy-to $(ROOT)/build/$(MAPDRV_ARCH))
# The statically linked tool for each architecture (scripts/build-tool.sh).
TOOL_x86_64 := $(ROOT)/userspace/target/x86_64-unknown-linux-gnu/release/mapdrv
TOOL_arm64 := $(ROOT)/userspace/target/aarch64-unknown-linux-gnu/release/mapdrv
TOOL_arm := $(ROOT)/userspace/target/armv7-unknown-linux-gnueabihf/release/mapdrv
TOOL := $(TOOL_$(MAPDRV_ARCH))
DEBUG_MODULE := $(ROOT)/build/debug/rust_mapdrv.ko
SOAK_SECONDS ?= 600
CARGO ?= cargo

.PHONY: all module debug-kernel debug-module setup kernel kdir tool run test bench soak check fmt-check clippy fmt shell gdb rustdoc rust-analyzer clean distclean help

all: module

help:
	@sed -n '3,12p' $(ROOT)/Makefile | sed 's/^# \{0,1\}//'
	@echo "Other targets: bench soak module debug-module tool kernel debug-kernel kdir setup check clippy fmt shell gdb rustdoc rust-analyzer clean distclean"

## Set-up: Debian packages, bindgen, kernel source (idempotent, quick when done).
setup:
	@bash $(ROOT)/scripts/setup.sh

## The VM kernel (tinyconfig + scripts/kconfig/vm.config + vm-ARCH.config), cached.
kernel: setup
	@bash $(ROOT)/scripts/build-kernel.sh vm $(MAPDRV_ARCH) >/dev/null

## The tree the module builds against.
kdir:
	@bash $(ROOT)/scripts/build-module.sh --arch $(MAPDRV_ARCH) $(KDIR_ARG) --print-kdir

## The debug kernel: the VM kernel plus KASAN, KFENCE, lockdep, DEBUG_VM,
## page_table_check, kmemleak... (scripts/kconfig/debug.config), cached.
debug-kernel: setup
	@bash $(ROOT)/scripts/build-kernel.sh debug x86_64 >/dev/null

## rust_mapdrv.ko for the debug kernel, built from a copy in build/debug/.
debug-module: debug-kernel
	@bash $(ROOT)/scripts/build-module.sh --arch x86_64 --flavour debug --copy-to $(ROOT)/build/debug modules

## rust_mapdrv.ko (CLIPPY=1 for clippy's lints).
module:
	@bash $(ROOT)/scripts/build-module.sh --arch $(MAPDRV_ARCH) $(KDIR_ARG) $(MODULE_COPY) modules $(if $(CLIPPY),CLIPPY=$(CLIPPY))

## The statically linked userspace tool that runs in the VM.
tool:
	@bash $(ROOT)/scripts/build-tool.sh $(MAPDRV_ARCH) >/dev/null

## The main job: set up, build, boot, load, exercise, unload. The demo's
## picture and JSON land in results/ (sent over a second serial port), and
## the guest's whole kernel log (dmesg.txt, over a third: `quiet` keeps
## warnings off the console), which must show no WARNING, BUG, lockdep report...
RESULTS := $(ROOT)/results
CHECK_KERNEL_LOG := bash $(ROOT)/scripts/check-kernel-log.sh --dmesg
run: module tool
	@bash $(ROOT)/scripts/run-vm.sh --arch $(MAPDRV_ARCH) --append quiet --add $(MODULE) --add $(TOOL):/bin/mapdrv \
		--add $(ROOT)/scripts/guest/demo.sh:/bin/mapdrv-demo \
		--add $(ROOT)/scripts/guest/export-file:/bin/export-file \
		--export $(RESULTS)/exports.txt --kernel-log $(RESULTS)/dmesg.txt -- mapdrv-demo; \
		status=$$?; $(CHECK_KERNEL_LOG) $(RESULTS)/dmesg.txt && exit $$status
	@bash $(ROOT)/scripts/extract-exports.sh $(RESULTS)/exports.txt $(RESULTS) | sed 's/^/written: /'

## The test suite on TEST_ARCHES; ends with "N passed, M failed" (after a
## line per architecture that counts skipped checks too).
test:
	@for a in $(TEST_ARCHES); do $(MAKE) --no-print-directory module tool ARCH=$$a || exit; done
	@$(if $(filter x86_64,$(TEST_ARCHES)),$(MAKE) --no-print-directory debug-module ARCH=x86_64)
	@$(if $(filter x86_64,$(TEST_ARCHES)), \
		MAPDRV_MODULE=$(MODULE_x86_64) MAPDRV_TOOL=$(TOOL_x86_64) MAPDRV_DEBUG_MODULE=$(DEBUG_MODULE) \
		MAPDRV_DEBUG_KERNEL=$$(bash $(ROOT)/scripts/build-kernel.sh debug x86_64)/arch/x86/boot/bzImage,) \
	$(if $(filter arm64,$(TEST_ARCHES)), \
		MAPDRV_ARM64_MODULE=$(MODULE_arm64) MAPDRV_ARM64_TOOL=$(TOOL_arm64) \
		MAPDRV_ARM64_KERNEL=$$(bash $(ROOT)/scripts/build-kernel.sh vm arm64)/arch/arm64/boot/Image,) \
	$(if $(filter arm,$(TEST_ARCHES)), \
		MAPDRV_ARM_MODULE=$(MODULE_arm) MAPDRV_ARM_TOOL=$(TOOL_arm) \
		MAPDRV_ARM_KERNEL=$$(bash $(ROOT)/scripts/build-kernel.sh vm arm)/arch/arm/boot/zImage,) \
		bash $(ROOT)/tests/run.sh $(if $(filter x86_64,$(TEST_ARCHES)),,--only-arch $(MAPDRV_ARCH))

## Long runs are benchmarks, not tests: fuzz and stress on the debug kernel for
## SOAK_SECONDS each (default 600) with new random seeds (printed in the logs).
soak: x86_64-only debug-module tool
	@MAPDRV_TOOL=$(TOOL_x86_64) MAPDRV_DEBUG_MODULE=$(DEBUG_MODULE) \
		MAPDRV_DEBUG_KERNEL=$$(bash $(ROOT)/scripts/build-kernel.sh debug)/arch/x86/boot/bzImage \
		bash $(ROOT)/tests/run.sh --soak $(SOAK_SECONDS)

## The benchmark: boot the VM, run `mapdrv bench` (the module's modes against
## memfd, MAP_POPULATE and anonymous memory), print the tables and save JSON,
## Markdown and SVG under results/bench-<date>-<time>/. BENCH_ARGS adds
## `mapdrv bench` options (e.g. BENCH_ARGS="--rounds 7"); ICOUNT=1 runs it
## under QEMU's instruction counter, where every time counts guest
## instructions (scripts/bench.sh --icount).
bench: module tool
	@$(if $(filter-out x86_64,$(MAPDRV_ARCH)),$(MAKE) --no-print-directory tool ARCH=x86_64)
	@MAPDRV_BENCH_COMMAND='make bench ARCH=$(MAPDRV_ARCH)$(if $(filter 1,$(ICOUNT)), ICOUNT=1)$(if $(BENCH_ARGS), BENCH_ARGS="$(BENCH_ARGS)")' \
		bash $(ROOT)/scripts/bench.sh --arch $(MAPDRV_ARCH) $(if $(filter 1,$(ICOUNT)),--icount) $(if $(BENCH_ARGS),-- $(BENCH_ARGS))

## Style gates without a VM: rustfmt and clippy, module and tool.
check: fmt-check clippy

fmt-check:
	@bash $(ROOT)/scripts/check-style.sh

clippy:
	@$(MAKE) --no-print-directory module CLIPPY=1

fmt:
	@bash $(ROOT)/scripts/check-style.sh --fix

## The module's documentation (rustdoc, private items too).
rustdoc: module
	@bash $(ROOT)/scripts/rustdoc.sh

## rust-project.json for rust-analyzer (the kernel's own generator).
rust-analyzer:
	@bash $(ROOT)/scripts/build-module.sh $(KDIR_ARG) rust-analyzer
	@echo "wrote $(ROOT)/rust-project.json"

## A shell in the VM with the module loaded and the tool on PATH.
shell: module tool
	@bash $(ROOT)/scripts/run-vm.sh --arch $(MAPDRV_ARCH) --shell --append quiet --add $(MODULE) --add $(TOOL):/bin/mapdrv \
		--kernel-log $(MAPDRV_CACHE)/logs/shell-dmesg.txt \
		-- 'insmod /lib/modules/rust_mapdrv.ko && echo "rust_mapdrv loaded; try: mapdrv dump, mapdrv verify, dmesg"'; \
		status=$$?; $(CHECK_KERNEL_LOG) $(MAPDRV_CACHE)/logs/shell-dmesg.txt && exit $$status

## The VM under gdb: a debug-info kernel, QEMU's gdb stub, the gdb command to run.
gdb: x86_64-only tool
	@bash $(ROOT)/scripts/gdb.sh $(TOOL)

# The debug and gdb kernels are x86_64's (KASAN with Rust, the gdb scripts).
.PHONY: x86_64-only
x86_64-only:
	@$(if $(filter-out x86_64,$(MAPDRV_ARCH)),echo "error: make $(MAKECMDGOALS) is set up for x86_64 only (not ARCH=$(ARCH))" >&2; exit 2)

clean:
	@bash $(ROOT)/scripts/build-module.sh $(KDIR_ARG) clean >/dev/null 2>&1 || \
		rm -f $(ROOT)/*.o $(ROOT)/*.ko $(ROOT)/*.mod* $(ROOT)/.*.cmd $(ROOT)/modules.order $(ROOT)/Module.symvers
	@rm -rf $(ROOT)/build
	@cd $(ROOT)/userspace && $(CARGO) clean --quiet

## Removes the cache too: the next make run starts from scratch.
distclean: clean
	rm -rf $(MAPDRV_CACHE)
