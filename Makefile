# Weir: the two set-up commands are `make run` and `make test`; both install what they need.
SHELL := /bin/bash
SWIFT ?= swift
WEIR := .build/debug/weir
WEIR_RELEASE := .build/release/weir
DEFAULT_POLICY := Policies/docker-default.weir

.PHONY: all deps build run test generate check-generated bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build

# The main job: compile the bundled default policy and print the iptables-restore text.
run: build
	$(WEIR) compile $(DEFAULT_POLICY)

# Unit, scenario, golden-staleness and kernel tests (kernel tests need root; they fail,
# not skip, without it unless WEIR_SKIP_KERNEL_TESTS=1).
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Regenerate Generated/ from Policies/ (review the diff before committing).
generate: build
	$(WEIR) compile --update

check-generated: build
	$(WEIR) compile --check

bench: deps
	$(SWIFT) build -c release
	scripts/bench.sh $(WEIR_RELEASE)

clean:
	rm -rf .build
