#!/usr/bin/env bash
# Configure (once) and build what the tests and the demo need.
#   build.sh          the work tree (base + series) into work/build
#                     (or BUILD_DIR; SANITIZE=1 adds ASan and UBSan)
#   build.sh base     the unpatched base, checked out in work/base/qemu,
#                     into work/base/build
# Extra ninja targets may follow.
. "$(dirname "$0")/lib.sh"

if [[ ${1:-} = base ]]; then
    src=$BASE_SRC_DIR build=$BASE_BUILD_DIR
    shift
    targets=(qemu-system-x86_64)
    git -C "$QEMU_BASE_DIR" rev-parse -q --verify refs/tags/base >/dev/null ||
        die "no base: run 'make fetch' first"
    checkout_beside "$QEMU_BASE_DIR" "$src" base
else
    src=$QEMU_DIR build=$BUILD_DIR
    targets=(qemu-system-x86_64 qemu-img tests/qtest/migration-test
             tests/qtest/qos-test
             tests/unit/test-vmstate tests/unit/test-qemu-file
             tests/unit/test-net-checksum tests/unit/test-netpass-wire
             tests/unit/test-io-channel-command)
fi
[[ -f $src/configure ]] || die "no source at $src (run 'make fetch apply')"
# ccache's base directory: the parent of the source and the build
# directory when they sit side by side (work/qemu and work/build,
# work/base/qemu and work/base/build...), so that each build's compiler
# sees the same relative paths and ccache shares what they compile
if [[ ${src%/*} = "${build%/*}" ]]; then
    export CCACHE_BASEDIR=${src%/*}
fi

# Debian's tarball has no firmware: use Debian's seabios and ipxe, and the
# option ROMs (kvmvapic.bin, linuxboot_dma.bin...) from qemu-system-data.
# configure takes the search path colon-separated.
fwpath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
conf=(--target-list=x86_64-softmmu --disable-docs --disable-user
      --disable-install-blobs --python="$PYTHON"
      --firmwarepath=$fwpath
      --disable-gtk --disable-sdl --disable-vnc --disable-spice
      --disable-opengl --disable-virglrenderer)
# SANITIZE=1 (scripts/sanitize.sh, into its own build directory):
# AddressSanitizer and UBSan
if [[ ${SANITIZE:-0} = 1 ]]; then
    conf+=(--enable-asan --enable-ubsan)
fi
configure_once "$build" "${conf[*]}" "$src/configure" "${conf[@]}"
# Only the targets this tree has (a prefix of the series may lack some)
ninja_build "$build"
avail=$(ninja -C "$build" -t targets all | cut -d: -f1)
want=()
for t in "${targets[@]}" "$@"; do
    if grep -qxF "$t" <<<"$avail"; then
        want+=("$t")
    fi
done
ninja_build "$build" "${want[@]}"
# Run from the build tree, QEMU looks for firmware below qemu-bundle/
# (relocated search path): point those directories at the system ones.
IFS=: read -ra fwdirs <<<"$fwpath"
for d in "${fwdirs[@]}"; do
    if ! [[ -e $build/qemu-bundle$d ]]; then
        mkdir -p "$(dirname "$build/qemu-bundle$d")"
        ln -s "$d" "$build/qemu-bundle$d"
    fi
done
say "build: done"
