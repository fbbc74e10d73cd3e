# The README's commands. Everything real lives in meson.build and scripts/.
BUILD ?= build

.PHONY: all deps build demo check bench format fuzz clean

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

# Every benchmark in bench/ (each prints its own figures and goals).
bench: build
	@set -e; for b in bench/*.sh; do echo "== $$b"; $$b $(BUILD); done

format:
	@scripts/format

clean:
	rm -rf $(BUILD) build-asan
