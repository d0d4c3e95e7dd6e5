#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Check a VM's kernel log for what tests/run.sh's "kernel log is clean" looks
# for (kernel_reports in scripts/lib.sh: WARNING:, BUG:, lockdep's INFO:,
# Oops, Call Trace, unexpected taints...). For the VMs that boot with
# `quiet`, which keeps those lines off the console: make run, make shell,
# make bench, host/layout.
#
# Usage: scripts/check-kernel-log.sh [--dmesg FILE] [CONSOLE_LOG...]
#   --dmesg FILE   the guest's whole kernel log, every level whatever `quiet`
#                  says, as scripts/run-vm.sh --kernel-log FILE brought it
#                  home; it must be there, whole and start at boot
#   CONSOLE_LOG    console logs (scripts/run-vm.sh --log) to check as well
# Exit status: 0 when clean; 1 with the problems (at most 5 lines) on
# standard error; 2 for a usage error.
source "$(dirname "$0")/lib.sh"

usage() { sed -n '/^# Usage:/,/^# standard error;/s/^# \{0,1\}//p' "$0" >&2; exit 2; }

args=()
case ${1:-} in
--dmesg) [ $# -ge 2 ] || usage; args=(--dmesg "$2"); shift 2 ;;
-h | --help) usage ;;
-*) echo "check-kernel-log.sh: unknown option '$1'" >&2; usage ;;
esac
[ ${#args[@]} -gt 0 ] || [ $# -gt 0 ] || usage

problems=$(kernel_log_problems "${args[@]}" "$@")
[ -z "$problems" ] && exit 0
printf '%serror:%s the guest'\''s kernel log shows a problem:\n' "$_c_red" "$_c_off" >&2
printf '%s\n' "$problems" | while IFS= read -r l; do info "$l"; done
exit 1
