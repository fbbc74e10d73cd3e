# The README's commands. Everything real lives in meson.build and scripts/.
BUILD ?= build

# The NFS lab's settings (docs/nfs-lab.md): the only place they have
# defaults; `strata lab nfs` takes each as a required option.
IMAGE_NAME ?= strata-nfsd
IMAGE_TAG ?= latest
VM_OUTPUT_DIR ?= build/nfstest/vm
VM_IMAGE_NAME ?= vm.qcow2
CIDATA_NAME ?= cidata.iso
TESTCASE ?= open,read,write
NFS_PORT ?= 4000
NFSTEST_DIR ?= build/nfstest
SERVER ?= container
EXPORT_MODE ?= rw
CLIENT ?= vm

# The VM lab's defaults, in one place (make vm-help; docs/vm.md).
VM_NAME ?= strata-test
VM_INSTANCE ?= default
VM_DIR ?= $(CURDIR)/$(BUILD)/vm-lab
# The vm suite's image (VM_NAME in VM_DIR) carries the NFS lab client's
# packages and the orchd smoke tests' (podman...: make dev-loop in it), so
# make vm-* and the tests share one cached image.
VM_PACKAGES ?= $(shell grep -v '^\#' tests/nfslab/vm-packages)
VM_MEM ?= 1024
VM_CPUS ?= 2
VM_SNAPSHOT ?= clean
VM_FORWARDS ?=
VM_GRACE ?= 30
# vm-start's wait for the ready marker (s); empty: strata's default (300 s,
# stretched by the load per CPU above 1, at most 3600 s).
VM_START_TIMEOUT ?=
VM_TIMEOUT ?= 1200
VM_SYNC_DEST ?= /work/strata
# vm-test-integration: the image the integration suite runs in (built with
# the packages its tests drive: what scripts/install-deps installs on a
# host, but the VM lab's own and auditd, whose suite is not in it), its root
# size, its tests (meson names; empty: all), the guest's memory (MB), its
# CPUs and the whole run's timeout (s). The packages go in with apt-get
# (docs/vm.md), so a virtual one resolves; containernetworking-plugins is
# named anyway, as the host's podman uses it too, and iptables for its
# firewall plugin (published ports).
VM_IT_NAME ?= strata-it
VM_IT_PACKAGES ?= s6 bubblewrap busybox-static podman runc containernetworking-plugins iptables debootstrap \
	curl python3-yaml attr libcap2-bin procps util-linux libnfs-utils e2fsprogs \
	skopeo docker-registry dropbear-bin genisoimage build-essential clang libclang-rt-dev pkg-config \
	meson ninja-build libjansson-dev libcmocka-dev libmicrohttpd-dev libarchive-dev \
	rpcsvc-proto libtirpc-dev nettle-dev libnfs-dev go-md2man debhelper lintian fakeroot man-db
VM_IT_SIZE ?= 8G
VM_TESTS ?=
VM_IT_MEM ?= 2048
VM_IT_CPUS ?= 2
VM_IT_TIMEOUT ?= 10800

# Root's tools (debootstrap, runc, pivot_root) live in the sbin dirs, which
# the PATH of cron, of some CI runners or of a non-login shell lacks.
ifeq ($(filter /usr/sbin,$(subst :, ,$(PATH))),)
export PATH := $(PATH):/usr/local/sbin:/usr/sbin:/sbin
endif

.PHONY: all deps build demo check format fuzz bench install deb test-image image-test clean \
	vm-help vm-setup vm-build vm-start vm-stop vm-status vm-ssh vm-snapshot vm-restore \
	vm-destroy vm-sync vm-test-unit vm-test-integration vm-test-all vm-quick \
	start-test-env nfstest stop-test-env dev-loop

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: build
	@scripts/demo $(BUILD)

# The orchd dev loop (scripts/dev-container-test.sh, docs/orchd.md):
# DEV_TARGET=HOST (DEV_SSH_CONFIG=FILE) for an ssh host; else the local
# target: the VM lab's instance VM_NAME/VM_INSTANCE in VM_DIR when it runs
# (make vm-start), otherwise a lab machine; DEV_LOCAL=vm|lab to choose.
# DEV_ARGS: more options (--once: one round).
DEV_TARGET ?=
DEV_SSH_CONFIG ?=
DEV_LOCAL ?=
DEV_ARGS ?=
dev-loop: build
	STRATA_BUILD_ROOT=$(abspath $(BUILD)) STRATA=$(abspath $(BUILD))/src/cli/strata \
	scripts/dev-container-test.sh $(if $(DEV_TARGET),--target $(DEV_TARGET)) \
		$(if $(DEV_SSH_CONFIG),--ssh-config $(DEV_SSH_CONFIG)) \
		$(if $(DEV_TARGET),,$(if $(DEV_LOCAL),--local $(DEV_LOCAL)) --vm-dir $(VM_DIR) \
		--vm-name $(VM_NAME) --vm-instance $(VM_INSTANCE)) $(DEV_ARGS)

check:
	@scripts/check

format:
	@scripts/format

# libFuzzer targets for FUZZ_TIME seconds (clang; build-fuzz/).
FUZZ_TIME ?= 300
fuzz: deps
	@scripts/fuzz $(FUZZ_TIME)

# Every benchmark under bench/ (bench/*.sh), each printing its own figures.
bench: build
	@set -e; for b in bench/*.sh; do echo "== $$b"; BUILD=$(BUILD) $$b; done

# The test image (Dockerfile.test) in a podman store of its own under
# $(BUILD)/test-image: built with cached layers reused, then its suite (the
# image's own tests and strata's integration suite, or the integration
# tests IMAGE_TESTS names, e.g. IMAGE_TESTS="cli lab") run in it, and the
# state test again in a second container on the same /data/state volume;
# the status is the suite's.
IMAGE_TESTS ?=
test-image: build
	@BUILD=$(BUILD) scripts/test-image build

image-test:
	@BUILD=$(BUILD) IMAGE_TESTS="$(IMAGE_TESTS)" scripts/test-image run

# Installs binaries, man pages, completions, the s6 test-runner and the
# example migrations in FHS places under PREFIX (DESTDIR honoured), from a
# build dir of its own configured for that prefix.
PREFIX ?= /usr/local
INSTALL_BUILD ?= build-install
install: deps
	@if [ -f $(INSTALL_BUILD)/build.ninja ]; then meson configure $(INSTALL_BUILD) --prefix=$(PREFIX); \
	else meson setup $(INSTALL_BUILD) --prefix=$(PREFIX); fi
	ninja -C $(INSTALL_BUILD)
	meson install -C $(INSTALL_BUILD) --no-rebuild $(if $(DESTDIR),--destdir $(DESTDIR))

# The Debian package (build/deb/strata_VERSION_ARCH.deb), lintian-checked.
deb: deps
	@scripts/deb $(BUILD)/deb

clean: stop-test-env
	rm -rf $(NFSTEST_DIR) $(VM_OUTPUT_DIR)
	rm -rf $(BUILD) build-asan build-fuzz $(INSTALL_BUILD)

# ---- the VM lab (strata vm) ----
STRATA_VM = $(BUILD)/src/cli/strata vm --vm-dir $(VM_DIR)
VM_I = $(VM_NAME) --instance $(VM_INSTANCE)

vm-help:
	@echo "VM lab targets (VM_NAME=$(VM_NAME) VM_INSTANCE=$(VM_INSTANCE) VM_DIR=$(VM_DIR)):"
	@echo "  vm-setup             install, build strata, build the image VM_NAME"
	@echo "  vm-build             build (or find cached) the image (VM_PACKAGES=$(VM_PACKAGES))"
	@echo "  vm-start             boot the instance (VM_MEM, VM_CPUS, VM_FORWARDS=HOST:GUEST...,"
	@echo "                       VM_START_TIMEOUT=S to wait for sshd)"
	@echo "  vm-stop              power it down (kill after VM_GRACE=$(VM_GRACE) s)"
	@echo "  vm-status            the instances, as JSON"
	@echo "  vm-ssh               ssh into it (CMD='...' runs a command)"
	@echo "  vm-sync              rsync this tree to VM_SYNC_DEST=$(VM_SYNC_DEST) in it"
	@echo "  vm-snapshot          snapshot VM_SNAPSHOT=$(VM_SNAPSHOT) of the stopped instance"
	@echo "  vm-restore           restore VM_SNAPSHOT of the stopped instance"
	@echo "  vm-destroy           remove the instance"
	@echo "  vm-test-unit         the unit suite's binaries in a fresh throwaway guest"
	@echo "  vm-test-integration  the integration suite in a fresh guest of VM_IT_NAME=$(VM_IT_NAME)"
	@echo "                       (VM_TESTS='cli lab' runs those; exit status: the suite's)"
	@echo "  vm-test-all          both"
	@echo "  vm-quick             boot a throwaway guest and print its kernel and PID 1"
	@echo "  dev-loop             the orchd dev loop, on the instance when it runs (DEV_ARGS=--once)"

vm-setup: build vm-build

vm-build: build
	$(STRATA_VM) image build $(VM_NAME) --packages "$(VM_PACKAGES)"

vm-start: build
	$(STRATA_VM) start $(VM_I) --mem $(VM_MEM) --cpus $(VM_CPUS) $(foreach f,$(VM_FORWARDS),--forward $(f)) \
		$(if $(VM_START_TIMEOUT),--timeout $(VM_START_TIMEOUT))

vm-stop: build
	$(STRATA_VM) stop $(VM_I) --grace $(VM_GRACE)

vm-status: build
	$(STRATA_VM) status $(VM_NAME) --json

vm-ssh: build
	$(STRATA_VM) ssh $(VM_I) $(if $(CMD),-- sh -c '$(CMD)')

vm-sync: build
	$(STRATA_VM) sync $(VM_I) $(CURDIR) --dest $(VM_SYNC_DEST)

vm-snapshot: build
	$(STRATA_VM) snapshot $(VM_I) $(VM_SNAPSHOT)

vm-restore: build
	$(STRATA_VM) restore $(VM_I) $(VM_SNAPSHOT)

vm-destroy: build
	$(STRATA_VM) destroy $(VM_I) --yes

# The unit tests' binaries (built here, same Debian) run in a fresh guest;
# the guest's exit status is the suite's.
vm-test-unit: vm-build
	@scripts/vm-test-unit "$(BUILD)" $(VM_DIR) $(VM_NAME) $(VM_TIMEOUT)

# strata's privileged integration suite on a guest's own kernel (the form of
# the lab machine `make check` runs it in); the exit status is the suite's.
vm-test-integration: build
	$(STRATA_VM) image build $(VM_IT_NAME) --size $(VM_IT_SIZE) --packages "$(VM_IT_PACKAGES)"
	VM_MEM=$(VM_IT_MEM) VM_CPUS=$(VM_IT_CPUS) scripts/vm-test-integration "$(BUILD)" $(VM_DIR) $(VM_IT_NAME) \
		$(VM_IT_TIMEOUT) $(VM_TESTS)

vm-test-all: vm-test-unit vm-test-integration

vm-quick: vm-build
	$(STRATA_VM) run $(VM_NAME) --timeout 300 -- sh -c 'uname -r; cat /proc/1/comm'

# The NFS lab: the server (strata-nfsd in a podman container, or SERVER=lab
# in a strata lab machine) and a client VM; nfstest restarts the environment
# and runs TESTCASE in the VM, its exit status is the runner's.
NFSLAB = $(BUILD)/src/cli/strata lab nfs
NFSLAB_ENV = --work-dir $(NFSTEST_DIR) --nfsd $(BUILD)/src/nfsd/strata-nfsd \
	--image $(IMAGE_NAME) --tag $(IMAGE_TAG) --port $(NFS_PORT) --server $(SERVER) \
	--export-mode $(EXPORT_MODE) --client $(CLIENT) --vm-dir $(VM_OUTPUT_DIR) \
	--vm-image $(VM_IMAGE_NAME) --cidata $(CIDATA_NAME)

start-test-env: build
	@$(NFSLAB) start-env $(NFSLAB_ENV)

nfstest: build
	@$(NFSLAB) stop-env --work-dir $(NFSTEST_DIR)
	@$(NFSLAB) start-env $(NFSLAB_ENV)
	@$(NFSLAB) test $(NFSLAB_ENV) --testcase $(TESTCASE)

stop-test-env:
	@if [ -x $(BUILD)/src/cli/strata ]; then $(NFSLAB) stop-env --work-dir $(NFSTEST_DIR); fi
