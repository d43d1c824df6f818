# virtbench: two commands for a fresh machine.
#   make reproduce   set up, then execute every notebook (shorter bootstrap) and write reports/
#   make test        set up, then run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEBIAN_PACKAGES := docker.io containerd iptables qemu-system-x86 qemu-utils clang lld wasi-libc \
	libclang-rt-14-dev-wasm32 busybox-static cpio wrk e2fsprogs nodejs strace chromium
# hyperfine: the reference of `virtbench selfcheck` for whole-process start times
DEBIAN_PACKAGES += hyperfine
# the Debian userland (condition userland=debian): a minbase root file system from the mirror
DEBIAN_PACKAGES += debootstrap
# sandboxed and other OCI runtimes (docker/runsc, docker/crun) and the tools published claims name
DEBIAN_PACKAGES += runsc crun sysbench redis-server redis-tools
# the network-tracing probe: packets of an instance seen on the host
DEBIAN_PACKAGES += tcpdump
# the portability experiment: an artifact run on an emulated aarch64 CPU (user and system mode)
DEBIAN_PACKAGES += qemu-user qemu-system-arm libc6-arm64-cross libgcc-s1-arm64-cross

DEB_SRC := /etc/apt/sources.list.d/virtbench-src.sources

.PHONY: setup system-packages source-packages python-packages reproduce test lint clean \
	measure-reference

setup: system-packages source-packages python-packages

# Installs the Debian packages the suite uses, when some are missing and we run as root.
system-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -z "$$missing" ]; then echo "setup: Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "setup: installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "setup: missing Debian packages (run as root to install): $$missing"; fi

# A deb-src entry for the Debian archive apt already uses (its URI read from apt's own
# configured sources), so that `apt-get source sqlite3` can fetch
# SQLite's speedtest1.c (the speedtest1 workload); only as root, only once.
source-packages:
	@if apt-get indextargets --format '$$(CREATED_BY)' 2>/dev/null | grep -qx Sources; then \
		echo "setup: deb-src entries present"; \
	elif [ "$$(id -u)" = 0 ]; then \
		codename=$$(. /etc/os-release && echo $$VERSION_CODENAME); \
		uri=$$(apt-get indextargets --format '$$(REPO_URI) $$(RELEASE) $$(CREATED_BY)' \
			| awk -v s="$$codename" '$$2 == s && $$3 == "Packages" {print $$1; exit}'); \
		if [ -z "$$uri" ]; then echo "setup: no apt source for $$codename to add deb-src for"; exit 1; fi; \
		printf '%s\n' "# Written by virtbench's make setup: source packages it builds from" \
			"Types: deb-src" "URIs: $$uri" \
			"Suites: $$codename $$codename-updates" "Components: main" \
			"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" > $(DEB_SRC); \
		echo "setup: added $(DEB_SRC)"; apt-get update -qq; \
	else echo "setup: no deb-src entry (run as root to add one; speedtest1 needs it)"; fi

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools>=77"
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (virtbench)" >/dev/null
	touch $@

python-packages: $(VENV)/.installed

reproduce: setup
	$(VENV)/bin/virtbench reproduce --quick

test: setup
	$(VENV)/bin/python -m pytest -q -rs

# Measures a new reference run from this commit, every experiment in turn, into
# $(REFERENCE_DATASETS)/reference (resumable: the same command continues a cut-short run).
# n >= 6 per cell (startup 10); the seed HTTP load held for 10 s, not 300 s; the full-OS
# guest (a minute or more per boot under TCG) left out of startup, memory and density by
# option full_os=0. Every such choice is in the rows. Copy the folder over datasets/reference.
REFERENCE_DATASETS ?= datasets/new-reference
REFERENCE_RUN := $(VENV)/bin/virtbench run --run-id reference --force --datasets $(REFERENCE_DATASETS)
measure-reference: setup
	$(REFERENCE_RUN) startup --reps 10 --option full_os=0
	for e in memory density; do \
		$(REFERENCE_RUN) $$e --reps 6 --option full_os=0 || exit $$?; done
	for e in cpu io cpu_usage sysbench redis; do \
		$(REFERENCE_RUN) $$e --reps 6 || exit $$?; done
	$(REFERENCE_RUN) http --reps 6 --option http_seed_duration_s=10
	for e in isolation speedtest1 syscalls disk observability containment portability; do \
		$(REFERENCE_RUN) $$e || exit $$?; done

lint: python-packages
	$(VENV)/bin/ruff check lib tests

clean:
	rm -rf reports .pytest_cache
