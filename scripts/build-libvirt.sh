#!/usr/bin/env bash
# Configure (once) and build the libvirt work tree (pinned base + the
# libvirt series) into work/build-libvirt: the QEMU driver, the daemon and
# virsh that the lab runs, and the test programs scripts/check-libvirt.sh
# runs. Only what those need is enabled, so that the build fits in CI.
# Extra ninja targets may follow.
SERIES=libvirt
. "$(dirname "$0")/lib.sh"

src=$TREE_DIR build=$LV_BUILD_DIR
[[ -f $src/meson.build ]] || die "no libvirt tree at $src (run 'make libvirt-apply')"

# -Dsystem=true: /etc, /run and /var as an installed libvirt would use
# them; the lab gives each daemon its own, bind-mounted in its own mount
# namespace, and runs the programs from the build tree.
conf=(-Dsystem=true -Ddocs=disabled -Dtests=enabled -Dexpensive_tests=disabled
      -Dgit_werror=enabled -Dnls=disabled -Dbash_completion=disabled
      -Ddriver_qemu=enabled -Dqemu_user=root -Dqemu_group=root
      -Ddriver_remote=enabled -Ddriver_libvirtd=enabled
      -Ddriver_test=enabled -Ddriver_secrets=enabled
      -Ddriver_network=disabled -Ddriver_interface=disabled
      -Ddriver_lxc=disabled -Ddriver_ch=disabled -Ddriver_libxl=disabled
      -Ddriver_bhyve=disabled -Ddriver_esx=disabled -Ddriver_hyperv=disabled
      -Ddriver_openvz=disabled -Ddriver_vbox=disabled -Ddriver_vmware=disabled
      -Ddriver_vz=disabled
      -Dstorage_dir=disabled -Dstorage_disk=disabled -Dstorage_fs=disabled
      -Dstorage_gluster=disabled -Dstorage_iscsi=disabled
      -Dstorage_iscsi_direct=disabled -Dstorage_lvm=disabled
      -Dstorage_mpath=disabled -Dstorage_rbd=disabled -Dstorage_scsi=disabled
      -Dstorage_vstorage=disabled -Dstorage_zfs=disabled
      -Dapparmor=disabled -Dsecdriver_apparmor=disabled -Dselinux=disabled
      -Dsecdriver_selinux=disabled -Daudit=disabled -Dlibssh=disabled
      -Dlibssh2=disabled -Dsasl=disabled -Dpolkit=disabled -Dfirewalld=disabled
      -Dnss=disabled -Dwireshark_dissector=disabled -Dsanlock=disabled
      -Dnumactl=disabled -Dfuse=disabled -Dglusterfs=disabled -Dlibiscsi=disabled
      -Dcurl=disabled -Dudev=disabled -Dpciaccess=disabled -Dblkid=disabled
      -Dcapng=disabled -Dlibpcap=disabled -Dhost_validate=disabled
      -Dlogin_shell=disabled -Dnbdkit=disabled -Dssh_proxy=disabled
      -Duserfaultfd_sysctl=disabled -Dsysctl_config=disabled -Dinit_script=none)
# Every program the checks and the lab use, not the whole tree
targets=(src/libvirtd tools/virsh tests/qemucapsprobe
         tests/qemumigparamstest tests/qemumonitorjsontest
         tests/qemucapabilitiestest tests/domaincapstest tests/qemucaps2xmltest
         tests/qemumigrationcookiexmltest tests/virshtest)

configure_once "$build" "${conf[*]}" meson setup "${conf[@]}" "$build" "$src"
ninja_build "$build"
# The driver modules the daemon loads (the connection drivers and the
# storage file backends) come with the default target 'all' only as
# their own targets: ask for every shared module.
modules=$(ninja -C "$build" -t targets all | cut -d: -f1 |
          grep -E '^(src/(libvirt_driver_[a-z_]+|libvirt_storage_file_[a-z]+)|tests/lib[a-z_0-9]+)\.so$' || true)
# shellcheck disable=SC2206
ninja_build "$build" "${targets[@]}" $modules "$@"
say "build: done"
