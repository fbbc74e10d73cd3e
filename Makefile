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

# Root's tools (debootstrap, runc, pivot_root) live in the sbin dirs, which
# the PATH of cron, of some CI runners or of a non-login shell lacks.
ifeq ($(filter /usr/sbin,$(subst :, ,$(PATH))),)
export PATH := $(PATH):/usr/local/sbin:/usr/sbin:/sbin
endif

.PHONY: all deps build demo check format fuzz bench install deb clean start-test-env nfstest \
	stop-test-env

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

demo: build
	@scripts/demo $(BUILD)

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
