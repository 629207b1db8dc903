# The front door. `make run` and `make test` each work as the only command
# typed on a fresh Debian 12 machine.
SHELL := /bin/bash
BUILD ?= build
JOBS ?= $(shell nproc)
# Extra arguments for `make run`, e.g. make run ARGS="--listen 0.0.0.0:8080"
ARGS ?=
PREFIX ?= /usr/local
# Warnings are errors in CI.
WERROR := $(if $(filter true 1 yes,$(CI)),ON,OFF)

RELEASE_DIR := $(BUILD)/release
ASAN_DIR := $(BUILD)/asan

.PHONY: deps release run test bench fuzz install clean

deps:
	@scripts/deps.sh

release: deps
	cmake -S . -B $(RELEASE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DHUBCACHE_BUILD_TESTS=OFF -DHUBCACHE_WERROR=$(WERROR)
	cmake --build $(RELEASE_DIR) -j $(JOBS)

run: release
	$(RELEASE_DIR)/daemon/hubcache serve $(ARGS)

test:
	@scripts/deps.sh --test
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DHUBCACHE_SANITIZE=ON -DHUBCACHE_WERROR=$(WERROR)
	cmake --build $(ASAN_DIR) -j $(JOBS)
	cd $(ASAN_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

bench: release
	bench/run

# Each fuzzer for FUZZ_SECONDS (tests/fuzz/run reports execs/s and coverage).
FUZZ_SECONDS ?= 300
fuzz:
	@scripts/deps.sh
	tests/fuzz/run --seconds $(FUZZ_SECONDS)

install: release
	cmake --install $(RELEASE_DIR) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD)
