#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# One-time set-up, safe to run again: Debian packages, bindgen, kernel source,
# and for the other architectures (arm64, arm) their guest busybox. Every
# step checks first and does nothing when its result is already there. The
# host's apt configuration is never changed: Debian packages are installed
# from its own sources (QEMU perhaps from its release's backports suite,
# added for that one command: see qemu_suite), and the kernel source and the
# other architectures' packages come through a private apt configuration in
# the cache and are unpacked there, not installed (make distclean removes
# them with the rest of the cache).
#
# Usage: scripts/setup.sh [--check]
#   --check  only report what is missing (exit 1 if anything is)
source "$(dirname "$0")/lib.sh"

PACKAGES=(
	rustc-web rust-web-src rustfmt-web rust-web-clippy cargo-web
	clang-19 lld-19 llvm-19 libclang-19-dev
	make gcc flex bison bc libelf-dev libssl-dev
	cpio xz-utils gzip busybox-static
	python3 file
	# arm64 and arm: the C library and start files the static C test
	# helpers link with (clang-19 --target=aarch64-linux-gnu,
	# --target=arm-linux-gnueabihf).
	libc6-dev-arm64-cross libgcc-12-dev-arm64-cross
	libc6-dev-armhf-cross libgcc-12-dev-armhf-cross
)
# The VMs (qemu-system-arm runs both arm64 and arm guests). Installed on their
# own: see qemu_suite.
QEMU_PACKAGES=(qemu-system-x86 qemu-system-arm)

check_only=false
[ "${1:-}" = --check ] && check_only=true

# apt_update [--partial] LOG [APT-OPTION...]: apt-get update, tried up to
# three times: a mirror in the middle of a sync serves an index whose size
# does not match its Release file ("Mirror sync in progress?"), which is no
# reason to give up the set-up. With --partial a last failure is only a
# warning: the indexes that did arrive are used, and the download that
# follows says what is missing.
apt_update() {
	local partial=false log try
	[ "$1" = --partial ] && { partial=true; shift; }
	log=$1
	shift
	local -a update=(apt-get -o Acquire::Retries=3 "$@" update)
	for try in 1 2; do
		"${update[@]}" >"$log" 2>&1 && return 0
		info "apt-get update failed (try $try of 3, log $log); trying again in $((try * 20)) s"
		sleep $((try * 20))
	done
	if ! $partial; then
		run_logged "$log" "${update[@]}"
	elif ! "${update[@]}" >"$log" 2>&1; then
		info "apt-get update failed 3 times; going on with the indexes that arrived: $(grep -m1 '^E: Failed to fetch' "$log" | cut -c1-200)"
	fi
}

# missing_packages PACKAGE...: those of the PACKAGEs that are not installed.
missing_packages() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || echo "$p"
	done
}

# QEMU's packages must all be of one version (qemu-utils Breaks an older
# qemu-system-common). A machine may already carry qemu-utils from its
# release's backports suite while its apt sources list only the release
# itself; then apt cannot install qemu-system-* from the sources, and they
# must come from that backports suite too. Prints the suite to take them
# from, or nothing when the host's own sources will do.
qemu_suite() {
	local have codename
	have=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null) || return 0
	[ -n "$have" ] || return 0
	apt-cache madison qemu-system-common 2>/dev/null | awk -F' *[|] *' '{ print $2 }' |
		grep -qxF -- "$have" && return 0
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	[ -n "$codename" ] || die "qemu-utils $have is not in the host's apt sources and /etc/os-release names no release to find its backports suite"
	echo "$codename-backports"
}

# install_qemu_from SUITE PACKAGE...: install QEMU's PACKAGEs from SUITE of
# the host's Debian mirror, through apt options that add SUITE to the host's
# sources for this one command (a private source part and package lists), so
# the host's own apt configuration stays as it is.
install_qemu_from() {
	local suite=$1 mirror apt_dir
	shift
	mirror=$(debian_mirror)
	[ -n "$mirror" ] || die "could not find a Debian mirror in the host's apt configuration (apt-get indextargets)"
	apt_dir=$MAPDRV_CACHE/apt-qemu
	rm -rf "$apt_dir" && mkdir -p "$apt_dir"/{lists/partial,cache/archives/partial,parts}
	cp /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources "$apt_dir/parts/" 2>/dev/null || true
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} $suite main" \
		>"$apt_dir/parts/mapdrv-$suite.list"
	local -a opts=(
		-o "Dir::Etc::SourceParts=$apt_dir/parts"
		-o "Dir::State::Lists=$apt_dir/lists"
		-o "Dir::Cache=$apt_dir/cache"
	)
	stage "installing $* from $suite, the suite of the installed qemu-utils $(dpkg-query -W -f='${Version}' qemu-utils)"
	apt_update "$MAPDRV_CACHE/logs/apt-qemu-update.log" "${opts[@]}"
	DEBIAN_FRONTEND=noninteractive run_logged "$MAPDRV_CACHE/logs/apt-qemu-install.log" \
		apt-get "${opts[@]}" -t "$suite" install -y --no-install-recommends "$@"
}

install_packages() {
	local missing missing_qemu suite
	missing=$(missing_packages "${PACKAGES[@]}" | xargs)
	missing_qemu=$(missing_packages "${QEMU_PACKAGES[@]}" | xargs)
	[ -z "$missing$missing_qemu" ] && return 0
	$check_only && { info "missing Debian packages: $missing $missing_qemu"; return 1; }
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		die "missing Debian packages and no root apt-get to install them; as root run: apt-get install $missing $missing_qemu"
	fi
	apt_update "$MAPDRV_CACHE/logs/apt-update.log"
	suite=
	[ -z "$missing_qemu" ] || suite=$(qemu_suite)
	if [ -z "$suite" ]; then
		missing="$missing $missing_qemu"
		missing_qemu=
	fi
	if [ -n "${missing// /}" ]; then
		stage "installing Debian packages: $missing"
		DEBIAN_FRONTEND=noninteractive run_logged "$MAPDRV_CACHE/logs/apt-install.log" \
			apt-get install -y $missing
	fi
	[ -z "$missing_qemu" ] || install_qemu_from "$suite" $missing_qemu
}

install_bindgen() {
	if [ -x "$BINDGEN" ] && "$BINDGEN" --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
		return 0
	fi
	$check_only && { info "missing bindgen-cli $BINDGEN_VERSION"; return 1; }
	local cargo
	cargo=$(command -v cargo || true)
	[ -n "$cargo" ] || die "cargo not found: install Rust's cargo (Debian: apt-get install cargo-web) to build bindgen-cli"
	stage "building bindgen-cli $BINDGEN_VERSION (cargo install --locked, about 1 minute)"
	run_logged "$MAPDRV_CACHE/logs/bindgen-install.log" \
		"$cargo" install --locked --quiet bindgen-cli --version "=$BINDGEN_VERSION" \
		--root "$MAPDRV_CACHE/tools/bindgen-$BINDGEN_VERSION"
}

# The host's Debian mirror: the URI of its main Debian archive as apt sees it,
# so that no host name is written into this project.
debian_mirror() {
	apt-get indextargets --no-release-info --format '$(REPO_URI)' 2>/dev/null |
		awk '$1 !~ /security/ && $1 ~ /debian\/?$/ { print $1; exit }'
}

# private_apt_opts DIR: apt-get options for a private apt configuration in
# DIR (its own sources list, lists, cache and state), so that the host's apt
# sources, package lists and dpkg database are never touched.
private_apt_opts() {
	local apt_dir=$1
	mkdir -p "$apt_dir"/{lists/partial,cache/archives/partial,parts,prefs}
	printf '%s\n' \
		-o "Dir::Etc::SourceList=$apt_dir/sources.list" \
		-o "Dir::Etc::SourceParts=$apt_dir/parts" \
		-o "Dir::Etc::Preferences=$apt_dir/prefs/none" \
		-o "Dir::Etc::PreferencesParts=$apt_dir/prefs" \
		-o "Dir::State::Lists=$apt_dir/lists" \
		-o "Dir::Cache=$apt_dir/cache" \
		-o "Dir::State::status=/dev/null" \
		-o "APT::Get::List-Cleanup=false"
}

# The packages of another architecture that its VM needs, unpacked (not
# installed) under $MAPDRV_CACHE/foreign/ARCH: busybox-static, the guest's
# userland. (The tool's Rust standard library for ARCH is built from
# rust-web-src: see scripts/build-tool.sh.)
FOREIGN_PACKAGES=(busybox-static)

# foreign_ready ARCH: the packages of ARCH are unpacked.
foreign_ready() {
	local stamp
	stamp=$(foreign_dir "$1")/.mapdrv-unpacked
	[ -f "$stamp" ] && [ "$(cat "$stamp")" = "${FOREIGN_PACKAGES[*]}" ]
}

# fetch_foreign ARCH: download FOREIGN_PACKAGES for the Debian architecture of
# ARCH from the host's own Debian suites (as its apt configuration lists
# them) and unpack them into foreign_dir ARCH.
fetch_foreign() {
	local arch=$1 debarch dir apt_dir
	foreign_ready "$arch" && return 0
	debarch=$(debian_arch "$arch")
	$check_only && { info "missing $debarch packages: ${FOREIGN_PACKAGES[*]}"; return 1; }
	dir=$(foreign_dir "$arch")
	apt_dir=$MAPDRV_CACHE/apt-$debarch
	local -a opts
	mapfile -t opts < <(private_apt_opts "$apt_dir")
	opts+=(-o "APT::Architecture=$debarch" -o "APT::Architectures=$debarch")
	# The host's own suites and mirrors, for the other architecture.
	apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 2>/dev/null |
		awk -v a="$debarch" 'NF == 3 && !seen[$0]++ {
			print "deb [arch=" a " signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] " $1 " " $2 " " $3 }' \
		>"$apt_dir/sources.list"
	[ -s "$apt_dir/sources.list" ] || die "could not read the host's Debian suites (apt-get indextargets)"
	stage "fetching $debarch packages (${FOREIGN_PACKAGES[*]}) through a private apt configuration"
	apt_update --partial "$MAPDRV_CACHE/logs/apt-$debarch-update.log" "${opts[@]}"
	local debs=$apt_dir/debs
	rm -rf "$debs" && mkdir -p "$debs"
	(cd "$debs" && run_logged "$MAPDRV_CACHE/logs/apt-$debarch-download.log" \
		apt-get "${opts[@]}" download "${FOREIGN_PACKAGES[@]}")
	rm -rf "$dir" && mkdir -p "$dir"
	local deb
	for deb in "$debs"/*.deb; do
		dpkg-deb -x "$deb" "$dir"
		info "unpacked $(basename "$deb") into $dir"
	done
	echo "${FOREIGN_PACKAGES[*]}" >"$dir/.mapdrv-unpacked"
}

fetch_kernel_source() {
	if src=$(kernel_src_dir 2>/dev/null) && [ -f "$src/Makefile" ]; then
		return 0
	fi
	$check_only && { info "missing kernel source linux-source-$KERNEL_SERIES"; return 1; }
	local mirror apt_dir pkg deb
	mirror=$(debian_mirror)
	[ -n "$mirror" ] || die "could not find a Debian mirror in the host's apt configuration (apt-get indextargets)"
	mirror=${mirror%/}
	stage "fetching linux-source-$KERNEL_SERIES from $KERNEL_SUITE (private apt configuration, mirror $mirror)"

	# A private apt configuration, so the host's apt sources and package
	# lists are never touched.
	apt_dir=$MAPDRV_CACHE/apt
	local -a apt_opts
	mapfile -t apt_opts < <(private_apt_opts "$apt_dir")
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $KERNEL_SUITE main" \
		>"$apt_dir/sources.list"
	apt_update "$MAPDRV_CACHE/logs/apt-kernel-update.log" "${apt_opts[@]}"
	pkg=linux-source-$KERNEL_SERIES
	mkdir -p "$MAPDRV_CACHE/src"
	rm -f "$MAPDRV_CACHE/src/${pkg}_"*.deb
	(cd "$MAPDRV_CACHE/src" && run_logged "$MAPDRV_CACHE/logs/apt-kernel-download.log" \
		apt-get "${apt_opts[@]}" download "$pkg")
	deb=$(ls "$MAPDRV_CACHE/src/${pkg}_"*.deb)
	info "downloaded $(basename "$deb") ($(dpkg-deb -f "$deb" Version))"

	stage "unpacking the kernel source"
	local tmp
	tmp=$(mktemp -d "$MAPDRV_CACHE/src/unpack.XXXXXX")
	dpkg-deb -x "$deb" "$tmp"
	local tarball
	tarball=$(ls "$tmp"/usr/src/linux-source-*.tar.* | head -n1)
	[ -f "$tarball" ] || die "no source tarball under usr/src/ in $deb"
	tar -C "$tmp" -xf "$tarball"
	local dir
	dir=$(find "$tmp" -maxdepth 1 -type d -name 'linux-source-*' | head -n1)
	[ -f "$dir/Makefile" ] || die "the tarball $tarball has no kernel tree"
	local ver
	ver=$(kernel_version "$dir")
	rm -rf "$MAPDRV_CACHE/src/linux-$ver"
	mv "$dir" "$MAPDRV_CACHE/src/linux-$ver"
	rm -rf "$tmp"
	echo "$ver" >"$MAPDRV_CACHE/src/version"
	dpkg-deb -f "$deb" Version >"$MAPDRV_CACHE/src/debian-version"
	echo "$MAPDRV_CACHE/src/linux-$ver" >"$MAPDRV_CACHE/src/current"
}

mkdir -p "$MAPDRV_CACHE/logs"
status=0
install_packages || status=1
install_bindgen || status=1
fetch_kernel_source || status=1
for arch in $MAPDRV_ARCHES; do
	[ "$arch" = "$(mapdrv_arch "$(uname -m)")" ] || fetch_foreign "$arch" || status=1
done
if [ $status = 0 ]; then
	src=$(kernel_src_dir)
	info "kernel source: $src (Linux $(cat "$MAPDRV_CACHE/src/version"), Debian linux-source-$KERNEL_SERIES $(cat "$MAPDRV_CACHE/src/debian-version"))"
fi
exit $status
