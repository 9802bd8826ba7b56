# The workspace for the netpass migration series. `make help` lists the verbs.
SHELL := /bin/bash
S := scripts
PYTHON := /usr/bin/python3

.PHONY: help deps fetch apply build build-base check export status \
        bisect-check demo bench

help:
	@echo "make demo          build, then migrate a real guest under UDP traffic (precopy, postcopy): table + plot"
	@echo "make bench         the lab's full set: N=10 per mode and rate (long; not in CI)"
	@echo "make check         the test command: build, checkpatch, vmstate, unit tests, migration-test"
	@echo "make deps          install the build dependencies (apt, root)"
	@echo "make fetch         fetch and verify the pinned base (qemu $(shell sed -n 's/^BASE_VERSION=//p' $(S)/lib.sh))"
	@echo "make apply         work/qemu = base + patches/ (git am); FORCE=1 replaces unexported work"
	@echo "make build         build the patched QEMU (work/build)"
	@echo "make build-base    build the unpatched base (work/build-base)"
	@echo "make export        regenerate patches/ from work/qemu's commits"
	@echo "make status        fail if work/qemu holds what patches/ does not"
	@echo "make bisect-check  build every prefix of the series (slow; not in CI)"

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
check: build build-base
	@$(S)/check.sh
export:
	@$(S)/export.sh
status:
	@$(S)/status.sh
bisect-check: apply
	@$(S)/bisect-check.sh
demo: build
	@lab/demo.sh
bench: build
	@lab/guest.sh
	@$(PYTHON) lab/lab.py bench $(BENCH_ARGS)
