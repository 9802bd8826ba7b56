#!/usr/bin/env bash
# Build the lab guest into work/lab/guest: Debian's 6.1 kernel (the newest
# linux-image-6.1.0-*-amd64 in the archive, unpacked, not installed) and an
# initramfs of busybox-static, the virtio-net modules and the lab's static
# tools. Also builds the host-side tools into work/lab/bin. Cached.
. "$(dirname "$0")/../scripts/lib.sh"

# The virtio-net driver and what it needs, in load order (no depmod data).
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev
         virtio_pci failover net_failover virtio_net"
out=$WORK/lab/guest
bin=$WORK/lab/bin
mkdir -p "$out" "$bin" "$WORK/lab/dl"

for t in udpblast tcprr udpecho tcpecho dirtymem; do
    if [[ $TOP/lab/tools/$t.c -nt $bin/$t || $TOP/lab/tools/traffic.h -nt $bin/$t ]]; then
        say "guest: building $t"
        gcc -O2 -Wall -Wextra -Werror -static -o "$bin/$t" "$TOP/lab/tools/$t.c"
    fi
done

if ! [[ -f $out/vmlinuz ]]; then
    deb_unpack '^linux-image-6\.1\.0-[0-9]+-amd64$' "$WORK/lab/dl"
    pkg=${DEB_UNPACKED%% *}
    kver=${pkg#linux-image-}
    mods=$WORK/lab/dl/mods
    mkdir -p "$mods"
    for m in $modules; do
        find "$WORK/lab/dl/x/lib/modules/$kver" -name "$m.ko" -exec cp {} "$mods/" \;
        [[ -f $mods/$m.ko ]] || die "$pkg has no $m.ko"
    done
    echo "$DEB_UNPACKED" > "$out/kernel-version"
    cp "$WORK/lab/dl/x/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
    mv "$out/vmlinuz.tmp" "$out/vmlinuz"
fi

guest_tools="udpecho tcpecho dirtymem"
stale=0
for f in "$TOP/lab/guest/init" "$0" $(printf "$bin/%s " $guest_tools); do
    [[ $f -nt $out/initrd ]] && stale=1
done
if ((stale)) || [[ ! -f $out/initrd ]]; then
    say "guest: building the initramfs"
    root=$WORK/lab/initrd-root
    rm -rf "$root"
    mkdir -p "$root"/{bin,dev,proc,sys,lib/modules}
    cp /bin/busybox "$root/bin/busybox"
    for t in $guest_tools; do
        cp "$bin/$t" "$root/bin/"
    done
    cp "$WORK/lab/dl/mods"/*.ko "$root/lib/modules/"
    echo $modules > "$root/lib/modules/load-order"
    install -m 755 "$TOP/lab/guest/init" "$root/init"
    (cd "$root" && find . | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null) > "$out/initrd.tmp"
    mv "$out/initrd.tmp" "$out/initrd"
fi
say "guest: $(cat "$out/kernel-version"), initrd $(($(stat -c %s "$out/initrd") >> 10)) KiB"
