# The README's commands. Everything real lives in meson.build and scripts/.
BUILD ?= build

.PHONY: all deps build demo check format fuzz bench clean

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

clean:
	rm -rf $(BUILD) build-asan build-fuzz
