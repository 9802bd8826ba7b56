#!/usr/bin/env bash
# An older libvirt for one side of the compatibility runs (make
# libvirt-refusals): Debian bookworm's own libvirt, which has none of the
# libvirt series. Its daemon, library and QEMU driver are unpacked into
# work/libvirt-old, not installed: of the system, only the libraries they
# need are added. apt-get download checks each package against the
# archive's signed index. Idempotent.
. "$(dirname "$0")/lib.sh"

[[ $(id -u) = 0 ]] || die "libvirt-old needs root (apt-get)"

OLD_VERSION=9.0.0-4+deb12u2
OLD_PACKAGES=(libvirt0 libvirt-daemon libvirt-daemon-driver-qemu)
dir=$WORK/libvirt-old
dl=$WORK/download/libvirt-old

if [[ -x $dir/usr/sbin/libvirtd && $(cat "$dir/VERSION" 2>/dev/null) = "$OLD_VERSION" ]]; then
    exit 0
fi
say "libvirt-old: libvirt $OLD_VERSION (bookworm) into $dir"
rm -rf "$dir" "$dl"
mkdir -p "$dir" "$dl"
# The libraries the packages depend on, but not the packages themselves
# (nor the rest of libvirt they pull in): the first of each alternative
deps=$(for p in "${OLD_PACKAGES[@]}"; do
           apt-cache show "$p=$OLD_VERSION" | sed -n 's/^Depends: //p'
       done | tr ',' '\n' | sed 's/|.*//; s/(.*//; s/[[:space:]]//g' |
       grep -v '^libvirt' | sort -u)
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $deps >/dev/null
(cd "$dl" && apt-get download -q "${OLD_PACKAGES[@]/%/=$OLD_VERSION}" 2>&1 |
     grep -v "couldn't be accessed by user '_apt'" >&2 || true)
for deb in "$dl"/*.deb; do
    dpkg-deb -x "$deb" "$dir"
done
[[ -x $dir/usr/sbin/libvirtd ]] || die "libvirt-old: no libvirtd in the packages"
missing=$(LD_LIBRARY_PATH=$dir/usr/lib/x86_64-linux-gnu ldd "$dir/usr/sbin/libvirtd" \
              "$dir"/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so |
          grep 'not found' || true)
[[ -z $missing ]] || die "libvirt-old: libraries missing: $missing"
echo "$OLD_VERSION" > "$dir/VERSION"
say "libvirt-old: ready"
