#!/usr/bin/env bash
# Install everything the workspace needs from Debian's archive. Idempotent.
. "$(dirname "$0")/lib.sh"

[[ $(id -u) = 0 ]] || die "deps needs root (apt-get)"

# Sources: deb-src for the pinned QEMU (bookworm only has 7.2) and
# bookworm-backports for meson >= 1.5, pycotap and the option ROMs.
list=/etc/apt/sources.list.d/qemu-series.sources
mirror=$(awk '/^URIs:/ && /debian\/?$/ {print $2; exit}' \
         /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
want="Types: deb-src
URIs: $mirror
Suites: bookworm trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
stamp=$WORK/.deps-done
pkgs=(ninja-build pkg-config libglib2.0-dev libpixman-1-dev zlib1g-dev
      libslirp-dev libfdt-dev python3-venv flex bison ccache dpkg-dev
      xz-utils git perl ipxe-qemu
      iproute2 busybox-static python3-matplotlib nftables clang)
# SeaBIOS from backports: bookworm's 1.16.2 probes an AHCI hard disk with
# IDENTIFY PACKET, and on the error QEMU 10.2 reports it waits out its
# 32 s request timeout: every q35 guest with a disk (each migration
# qtest) would boot 32 s late. 1.16.3 boots it at once.
bpo=(meson python3-pycotap qemu-system-data seabios)

# With "libvirt": what the libvirt series' build and its lab need, beside
# QEMU's (make libvirt-build).
if [[ ${1:-} = libvirt ]]; then
    stamp=$WORK/.deps-libvirt-done
    lvpkgs=(libxml2-dev libxml2-utils xsltproc libgnutls28-dev libjson-c-dev
            libtirpc-dev libreadline-dev libnl-3-dev libnl-route-3-dev
            python3-docutils util-linux)
    if [[ -f $stamp && $(cat "$stamp") = "${lvpkgs[*]}" ]] &&
       dpkg -s "${lvpkgs[@]}" >/dev/null 2>&1; then
        say "deps: libvirt's already installed"
        exit 0
    fi
    say "deps: installing ${#lvpkgs[@]} packages for libvirt"
    apt-get install -y -qq --no-install-recommends "${lvpkgs[@]}" >/dev/null
    mkdir -p "$WORK"
    echo "${lvpkgs[*]}" > "$stamp"
    exit 0
fi

if [[ -f $stamp && -f $list ]] && [[ $(cat "$list") = "$want" ]] &&
   [[ $(cat "$stamp") = "${pkgs[*]} / ${bpo[*]}" ]] &&
   dpkg -s "${pkgs[@]}" "${bpo[@]}" >/dev/null 2>&1; then
    say "deps: already installed"
    exit 0
fi
say "deps: adding apt sources ($list)"
printf '%s\n' "$want" > "$list"
say "deps: apt-get update"
apt-get update -qq
say "deps: installing ${#pkgs[@]} packages from bookworm"
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
say "deps: installing ${bpo[*]} from bookworm-backports"
apt-get install -y -qq --no-install-recommends -t bookworm-backports \
    "${bpo[@]}" >/dev/null
mkdir -p "$WORK"
echo "${pkgs[*]} / ${bpo[*]}" > "$stamp"
say "deps: done"
