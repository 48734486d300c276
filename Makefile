# Weir: the two set-up commands are `make run` and `make test`; both install what they need.
SHELL := /bin/bash
SWIFT ?= swift
WEIR := .build/debug/weir
WEIR_RELEASE := .build/release/weir
DEFAULT_POLICY := Policies/docker-default.weir

.PHONY: all deps build run test generate check-generated bench clean

all: build

# Debian packages the build, the tests and later backends need; installed only when missing.
PACKAGES := libnftnl-dev libmnl-dev pkg-config iptables nftables iproute2 conntrack

deps:
	@missing=""; \
	for p in $(PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" -ne 0 ]; then echo "deps: need root to install$$missing" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

# The main job: compile the bundled default policy, print the iptables-restore and nft texts,
# and prove the two backends' outputs equivalent.
run: build
	@echo "# iptables-restore ($(DEFAULT_POLICY))"
	@$(WEIR) compile $(DEFAULT_POLICY)
	@echo
	@echo "# nft -f ($(DEFAULT_POLICY))"
	@$(WEIR) compile $(DEFAULT_POLICY) --target nft
	@echo
	@$(WEIR) verify $(DEFAULT_POLICY)

# Unit, scenario, golden-staleness and kernel tests (kernel tests need root; they fail,
# not skip, without it unless WEIR_SKIP_KERNEL_TESTS=1).
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Regenerate Generated/ from Policies/ (review the diff before committing); every policy's
# iptables output is first proved equivalent to its batch, and nothing is written otherwise.
generate: build
	$(WEIR) compile --update --verify

check-generated: build
	$(WEIR) compile --check

bench: deps
	$(SWIFT) build -c release
	$(WEIR_RELEASE) bench

clean:
	rm -rf .build
