# The workspace for the netpass migration series. `make help` lists the verbs.
SHELL := /bin/bash
S := scripts
QEMU_STACK := $(shell sed -n 's/^QEMU_STACK=(\(.*\))$$/\1/p' $(S)/lib.sh)
PYTHON := /usr/bin/python3
RESULTS := docs/results
# Lab campaigns for `make bench`; REPS per point
REPS ?= 20
FAULT_REPS ?= 10
LINKFAIL_REPS ?= 5
FUZZ_SECONDS ?= 300
MATRIX_REPS ?= 10
MATRIX_REPS_OFF ?= 3
LV_REPS ?= 10
LV_REPS_OFF ?= 3
# The randomized fault campaign: runs, and the first run's seed (empty:
# at random; run i has CHAOS_SEED + i)
CHAOS_REPS ?= 200
CHAOS_SEED ?=

.PHONY: libvirt-deps libvirt-fetch libvirt-apply libvirt-build libvirt-check libvirt-export libvirt-status libvirt-lab libvirt-refusals libvirt-postcopy-device libvirt-old \
        fuzz sanitize matrix highrate memflood faults faults-keepalive linkfail chaos help deps fetch apply build build-base check check-full check-breakage \
        export status bisect-check demo bench report vhost-check vhost-lab \
        vhost-libvirt

help:
	@echo "make demo          build, then migrate a real guest under UDP traffic (precopy, postcopy, netpass off and on)"
	@echo "make check         the test command (CI): runner self-test, checkpatch, vmstate, unit tests,"
	@echo "                   migration-test, cross-version runs, lab smoke, docs/figures.md = docs/results/"
	@echo "make check-full    make check with migration-test --full, upstream's long matrix (not in CI)"
	@echo "make vhost-check   netpass's cases in a TCG VM that has vhost-net and taps (not in CI)"
	@echo "make vhost-lab     the lab in that VM, on KVM guests, vhost-net off and on (VHOST_LAB=lab.py's arguments)"
	@echo "make vhost-libvirt virsh migrate [--netpass] there: KVM domains, virtio NIC, vhost driver off and on,"
	@echo "                   VHOST_QUEUES=$(VHOST_QUEUES) queues (VHOST_LIBVIRT=lab.py libvirt's arguments)"
	@echo "make check-breakage  break QEMU and migration-test on purpose (hang, crash, skip, no dump):"
	@echo "                   make check must fail on each, by name (minutes; not in CI)"
	@echo "make fuzz          fuzz the series' wire parser (libFuzzer, ASan, UBSan) for FUZZ_SECONDS=$(FUZZ_SECONDS)"
	@echo "make sanitize      the series' netpass and vm-started qtests on a QEMU built with ASan and UBSan (work/build-asan; long first build)"
	@echo "make bench         the lab's published set into $(RESULTS)/ (hours; REPS=$(REPS) per point), then report"
	@echo "make faults        the lab's scenario 4, faults at the start of postcopy (FAULT_REPS=$(FAULT_REPS) each), then report"
	@echo "make faults-keepalive  scenario 4's frozen destination, keepalive on, no management pause"
	@echo "make linkfail      the lab's scenario 5, a link that dies silently in postcopy: tcp, fd:, proxy;"
	@echo "                   idle and in flight; keepalive off and on (LINKFAIL_REPS=$(LINKFAIL_REPS) each), then report"
	@echo "make highrate      issue 24's high-rate point (50k, 100k frames/s): netpass's stall of the destination's"
	@echo "                   main loop, from its trace, appended to $(RESULTS)/highrate.jsonl (minutes)"
	@echo "make chaos         issue 24's randomized fault campaign: CHAOS_REPS=$(CHAOS_REPS) runs (seed CHAOS_SEED), a random"
	@echo "                   fault each, the lab as management, five invariants per run (lab/chaos.py; about"
	@echo "                   an hour for 200) into $(RESULTS)/chaos.jsonl, then report (docs/chaos.md)"
	@echo "make matrix        issue 11's lab matrix: unicast and broadcast, 2k and 5k/s (MATRIX_REPS=$(MATRIX_REPS) on, MATRIX_REPS_OFF=$(MATRIX_REPS_OFF) off; about an hour) into $(RESULTS)/matrix.jsonl"
	@echo "make memflood      the lab's flood of tiny frames at many times netpass-max-bytes: both QEMUs' own memory,"
	@echo "                   netpass on and off (MEMFLOOD_REPS=$(MEMFLOOD_REPS) each)"
	@echo "make report        docs/figures.md, cover letter figures and plots, from $(RESULTS)/"
	@echo "make libvirt-check the libvirt series: fetch, apply, build, then libvirt's own tests it touches"
	@echo "                   (the QEMU capabilities data, migration parameters, monitor, cookie, virsh)"
	@echo "make libvirt-lab   virsh migrate --netpass between two libvirt daemons on real guests under UDP traffic,"
	@echo "                   precopy and postcopy, off and on (LV_REPS=$(LV_REPS) each) into $(RESULTS)/libvirt.jsonl"
	@echo "make libvirt-refusals  virsh migrate --netpass refused (tunnelled, unpatched QEMU or libvirt 9.0 either side),"
	@echo "                   and migrations without it to an unpatched QEMU and to and from libvirt 9.0 (make libvirt-old)"
	@echo "make libvirt-postcopy-device  failures in postcopy-device through virsh (cut, domjobabort, a restart of the"
	@echo "                   source's libvirtd): the guest runs on exactly one side, into $(RESULTS)/libvirt-postcopy-device.jsonl"
	@echo "make libvirt-fetch / libvirt-apply / libvirt-build / libvirt-export / libvirt-status"
	@echo "                   as the QEMU verbs, for the libvirt series (libvirt $(shell sed -n 's/^ *BASE_VERSION=\([0-9][0-9.]*-.*\)/\1/p' $(S)/lib.sh | tail -n 1))"
	@echo "make deps          install the build dependencies (apt, root)"
	@echo "make fetch         fetch and verify the pinned base (qemu $(shell sed -n 's/^ *BASE_VERSION=\([0-9]*:.*\)/\1/p' $(S)/lib.sh))"
	@echo "make apply         work/qemu = base + QEMU's series in turn (git am): $(QEMU_STACK); FORCE=1 replaces unexported work"
	@echo "make build         build the patched QEMU (work/build)"
	@echo "make build-base    build the unpatched base (work/base/build)"
	@echo "make export        regenerate patches/NAME of each series from work/qemu's commits (branch stack/NAME ends each but the last)"
	@echo "make status        fail if work/qemu holds what patches/ does not"
	@echo "make bisect-check  build every prefix of QEMU's stack, or of one series with BISECT_SERIES=NAME (slow; not in CI)"

deps:
	@$(S)/deps.sh
fetch: deps
	@$(S)/fetch.sh
apply: fetch
	@$(S)/apply.sh
build: apply
	@$(S)/build.sh
build-base: fetch
	@$(S)/build.sh base
check: build build-base libvirt-build
	@$(S)/check.sh
check-full: build build-base libvirt-build
	@CHECK_FULL=1 $(S)/check.sh
fuzz: build
	@FUZZ_SECONDS=$(FUZZ_SECONDS) $(S)/fuzz.sh
check-breakage: build build-base
	@$(S)/check-breakage.sh
export:
	@$(S)/export.sh
# The series' netpass and vm-started qtests under ASan and UBSan, in
# work/build-asan (a first build is long; not in CI)
sanitize: apply
	@$(S)/sanitize.sh
# netpass's cases in a TCG VM with vhost-net and taps (issue 26; not in CI)
vhost-check: build
	@$(S)/vhost-check.sh

# 200 datagrams/s: at the lab's 2000/s the nested KVM guest, slow once
# migrated, let its socket overflow in a trial (docs/vhost-net.md)
VHOST_LAB ?= bench --profiles default --traffic udp --modes precopy,postcopy --reps 5 --udp-rate 200
vhost-lab: build
	@lab/guest.sh
	@VHOST_LAB="$(VHOST_LAB)" $(S)/vhost-check.sh
# libvirt's default KVM interface (vhost-net, several queues) in the bed
VHOST_QUEUES ?= 4
VHOST_LIBVIRT ?= libvirt --reps 5 --udp-rate 200 --seconds 30
# (the refusals, VHOST_LIBVIRT='libvirt-refusals --cases ...', apart)
VHOST_LIBVIRT_RESULTS ?= $(if $(filter libvirt-refusals,$(firstword $(VHOST_LIBVIRT))),vhost-libvirt-refusals.jsonl,vhost-libvirt.jsonl)
vhost-libvirt: build libvirt-build
	@lab/guest.sh
	@VHOST_LAB="$(VHOST_LIBVIRT)" VHOST_QUEUES=$(VHOST_QUEUES) \
		VHOST_LAB_RESULTS=$(VHOST_LIBVIRT_RESULTS) $(S)/vhost-check.sh
status:
	@$(S)/status.sh
bisect-check: apply
	@$(S)/bisect-check.sh
demo: build
	@lab/demo.sh
# Each campaign replaces its records: a published table never mixes
# series or settings.
bench: build
	@lab/guest.sh
	@mkdir -p $(RESULTS)
	rm -f $(RESULTS)/bench.jsonl $(RESULTS)/downtime.jsonl \
	      $(RESULTS)/flood.jsonl $(RESULTS)/capacity.jsonl
	$(PYTHON) lab/lab.py bench --reps $(REPS) --publish $(RESULTS)/bench.jsonl
	$(PYTHON) lab/lab.py downtime --reps $(REPS) --publish $(RESULTS)/downtime.jsonl
	$(PYTHON) lab/lab.py flood --reps 3 --publish $(RESULTS)/flood.jsonl
	$(PYTHON) lab/lab.py capacity --profiles default --publish $(RESULTS)/capacity.jsonl
	@$(MAKE) --no-print-directory report
# Scenario 4: faults at the start of postcopy, FAULT_REPS each (about
# 45 minutes for 10)
faults: build
	@lab/guest.sh
	@mkdir -p $(RESULTS)
	rm -f $(RESULTS)/faults.jsonl
	$(PYTHON) lab/lab.py faults --reps $(FAULT_REPS) --publish $(RESULTS)/faults.jsonl
	@$(MAKE) --no-print-directory report
# Scenario 4's frozen destination with the keepalive on and no
# management pause: the source must leave postcopy-device by itself
faults-keepalive: build
	@lab/guest.sh
	@mkdir -p $(RESULTS)
	rm -f $(RESULTS)/faults-keepalive.jsonl
	$(PYTHON) lab/lab.py faults --faults freeze --fault-keepalive 1000 --pause-after 60 --reps $(FAULT_REPS) --publish $(RESULTS)/faults-keepalive.jsonl
	@$(MAKE) --no-print-directory report
# Scenario 5: a link that dies silently in postcopy, LINKFAIL_REPS per
# point (about an hour for 5)
linkfail: build
	@lab/guest.sh
	@mkdir -p $(RESULTS)
	rm -f $(RESULTS)/linkfail.jsonl
	$(PYTHON) lab/lab.py linkfail --reps $(LINKFAIL_REPS) --publish $(RESULTS)/linkfail.jsonl
	@$(MAKE) --no-print-directory report
# Issue 24's fault campaign (about an hour for 200); a run is replayed
# with lab/chaos.py --seed SEED --reps 1 (its records then stay in
# work/lab/). docs/chaos.md is regenerated even when an invariant
# failed (the failures are the findings), and the verb fails then
chaos: build
	@lab/guest.sh
	@mkdir -p $(RESULTS)
	rm -f $(RESULTS)/chaos.jsonl
	$(PYTHON) lab/chaos.py --reps $(CHAOS_REPS) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED)) \
	    --publish $(RESULTS)/chaos.jsonl; status=$$?; \
	    $(PYTHON) lab/lab.py report; exit $$status
# Issue 11's matrix: UDP to the guest and to the segment's broadcast
# address (which the bridge floods to both QEMUs), 2k and 5k/s, profiles
# default and tuned, precopy and postcopy; MATRIX_REPS per point with
# netpass on, MATRIX_REPS_OFF with it off (about 65 minutes for 10 and 3)
matrix: build
	@lab/guest.sh
	@mkdir -p $(RESULTS)
	rm -f $(RESULTS)/matrix.jsonl
	$(PYTHON) lab/lab.py matrix --reps $(MATRIX_REPS) --reps-off $(MATRIX_REPS_OFF) \
	    --publish $(RESULTS)/matrix.jsonl
	@$(MAKE) --no-print-directory report
# Issue 24's high-rate point: 50k and 100k UDP frames/s, unicast and
# broadcast, netpass at its largest bound, one precopy run each, with
# the time netpass's release took of the destination's main loop
# (lab/stall.py, from the trace); appended to highrate.jsonl (minutes)
highrate: build
	@lab/guest.sh
	@mkdir -p $(RESULTS)
	rm -rf work/lab/results/highrate
	$(PYTHON) lab/lab.py matrix --rates 50000,100000 --modes precopy \
	    --profiles tuned --reps 1 --reps-off 0 \
	    --netpass-max-bytes 268435456 --trace 'netpass_release*' \
	    --trace netpass_load --out work/lab/results/highrate
	$(PYTHON) lab/stall.py < work/lab/results/highrate/runs.jsonl \
	    >> $(RESULTS)/highrate.jsonl
# A flood of tiny frames at many times netpass-max-bytes during a held
# switchover: resident memory of both QEMUs against the bound
MEMFLOOD_REPS ?= 5
memflood: build
	@lab/guest.sh
	@mkdir -p $(RESULTS)
	rm -f $(RESULTS)/memflood.jsonl
	$(PYTHON) lab/lab.py memflood --reps $(MEMFLOOD_REPS) --udp-rate 100000 --seconds 6 \
	    --publish $(RESULTS)/memflood.jsonl
	@$(MAKE) --no-print-directory report
# The cover letters' figures come from the records: export them again
report:
	@$(PYTHON) lab/lab.py report
	@if [ -d work/qemu/.git ]; then $(S)/export.sh; fi
	@if [ -d work/libvirt/.git ]; then SERIES=libvirt $(S)/export.sh; fi

# The libvirt series, beside QEMU's: the same verbs with SERIES=libvirt
libvirt-deps: deps
	@$(S)/deps.sh libvirt
libvirt-fetch: libvirt-deps
	@SERIES=libvirt $(S)/fetch.sh
libvirt-apply: libvirt-fetch
	@SERIES=libvirt $(S)/apply.sh
libvirt-build: libvirt-apply
	@$(S)/build-libvirt.sh
libvirt-check: libvirt-build
	@CHECK_ONLY=libvirt $(S)/check.sh
libvirt-export:
	@SERIES=libvirt $(S)/export.sh
libvirt-status:
	@SERIES=libvirt $(S)/status.sh
# An older libvirt (Debian bookworm's, unpacked into work/libvirt-old)
libvirt-old: deps
	@$(S)/libvirt-old.sh
# What virsh migrate --netpass refuses (tunnelled, an unpatched QEMU or an
# older libvirt on either side), and migrations without it to and from them
libvirt-refusals: libvirt-build build build-base libvirt-old
	@lab/guest.sh
	@mkdir -p $(RESULTS)
	rm -f $(RESULTS)/libvirt-refusals.jsonl
	$(PYTHON) lab/lab.py libvirt-refusals --publish $(RESULTS)/libvirt-refusals.jsonl
# Failures of a post-copy migration in postcopy-device, through virsh
libvirt-postcopy-device: libvirt-build build
	@lab/guest.sh
	@mkdir -p $(RESULTS)
	rm -f $(RESULTS)/libvirt-postcopy-device.jsonl
	$(PYTHON) lab/lab.py libvirt-postcopy-device --publish $(RESULTS)/libvirt-postcopy-device.jsonl
# virsh migrate between two libvirt daemons, LV_REPS per point
libvirt-lab: libvirt-build build
	@lab/guest.sh
	@mkdir -p $(RESULTS)
	rm -f $(RESULTS)/libvirt.jsonl
	$(PYTHON) lab/lab.py libvirt --reps $(LV_REPS) --reps-off $(LV_REPS_OFF) --publish $(RESULTS)/libvirt.jsonl
	@$(MAKE) --no-print-directory report
