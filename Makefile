# The README's commands. Everything real lives in meson.build and scripts/.
BUILD ?= build

# Root's tools (debootstrap, runc, pivot_root) live in the sbin dirs, which
# the PATH of cron, of some CI runners or of a non-login shell lacks.
ifeq ($(filter /usr/sbin,$(subst :, ,$(PATH))),)
export PATH := $(PATH):/usr/local/sbin:/usr/sbin:/sbin
endif

.PHONY: all deps build demo check format fuzz bench install deb clean

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

clean:
	rm -rf $(BUILD) build-asan build-fuzz $(INSTALL_BUILD)
