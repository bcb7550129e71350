# rkt build. `make` builds build/bin/rkt and what it needs beside it;
# `make test` runs the whole suite (scripts/test installs its dependencies
# first). Everything is static (CGO_ENABLED=0).

GO      ?= go
PREFIX  ?= /usr/local
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
BIN     := build/bin
LDFLAGS := -s -w -X main.version=$(VERSION)
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)"
STATICCHECK ?= build/tools/staticcheck

.PHONY: all rkt stage1 test lint unit root mutate mutate-ci fuzz fuzz-short functional man check-man install demo clean FORCE

all: rkt stage1

rkt:
	$(GOBUILD) -o $(BIN)/rkt ./rkt

# The stage1 images rkt finds beside itself: default (our isolation, with
# the CNI plugins from the pinned containernetworking/plugins module) and
# fly (chroot only), packaged by stage1/mkimage: default is three static
# binaries (see stage1/default), fly one.
stage1:
	$(GOBUILD) -o build/stage1/default/stage1 ./stage1/default
	$(GOBUILD) -o build/stage1/default/init ./stage1/default/init
	$(GOBUILD) -o build/stage1/default/stage2 ./stage1/default/launcher
	rm -rf build/stage1/plugins
	GO=$(GO) networking/build-plugins.sh build/stage1/plugins
	$(GO) run ./stage1/mkimage --flavor default --version $(VERSION) --bin build/stage1/default/stage1 \
		--init build/stage1/default/init --launcher build/stage1/default/stage2 \
		--plugins build/stage1/plugins -o $(BIN)/stage1-default.aci
	$(GOBUILD) -o build/stage1/fly/stage1 ./stage1/fly
	$(GO) run ./stage1/mkimage --flavor fly --version $(VERSION) --bin build/stage1/fly/stage1 -o $(BIN)/stage1-fly.aci

# Three tiers (docs/testing.md). Unit tests need no root: `make unit` runs
# every package with the root tests switched off (they skip, whoever runs
# it). `make root` runs the packages that have root tests (namespaces,
# mounts, cgroups, veths: testutil.RequireRoot) with RKT_TEST_ROOT=1, as
# root. Functional tests (tests/) drive the built binaries as root.
test: all lint check-man unit root mutate-ci functional

lint:
	$(GO) vet -tags mangen ./rkt
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^vendor/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1; }

# Packages that change the host's network (iptables, ip_forward) restore
# what they found; they run one at a time so that neither snapshots the
# other's rules.
HOSTNET_PKGS := ./networking ./stage1/default
# The other packages with root tests, found by their use of RequireRoot.
ROOT_PKGS = $(filter-out $(HOSTNET_PKGS) ./tests ./tests/testutils ./pkg/testutil,\
	$(sort $(addprefix ./,$(patsubst %/,%,$(dir $(shell git grep -l 'testutil.RequireRoot' -- '*_test.go'))))))

unit:
	env -u RKT_TEST_ROOT $(GO) test -count=1 $$($(GO) list ./... | grep -v -e '/tests$$')
	$(MAKE) fuzz-short

# Fuzz targets (func FuzzX in *_test.go), as package:function, found by
# grep so that a new one runs without editing this file. Their seed
# corpora run with every `go test`; `make fuzz` fuzzes each for FUZZTIME,
# `make fuzz-short` (part of `make unit`) for FUZZSHORT. Minimizing is
# capped: appc's decoders iterate over maps, so coverage is not exactly
# reproducible and minimizing an "interesting" input could take the
# default minute each time. The short run counts executions instead of
# seconds: with a duration, Go 1.26's fuzz coordinator may report a
# spurious "context deadline exceeded" when a worker is slow to stop at
# the deadline (golang/go#75804, fixed in Go 1.27), which a loaded CI
# machine hits.
FUZZTIME  ?= 1m
FUZZSHORT ?= 3000x
FUZZ_TARGETS = $(shell grep -r --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*' --exclude-dir=build --exclude-dir=.git . | sed -E 's|^(.*)/[^/]*:func (Fuzz.*)|\1:\2|' | sort)

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "fuzz $$fn ($$pkg) for $(FUZZTIME)"; \
		env -u RKT_TEST_ROOT $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10x $$pkg || exit 1; \
	done

fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZSHORT)

root:
	RKT_TEST_ROOT=1 $(GO) test -count=1 $(ROOT_PKGS)
	RKT_TEST_ROOT=1 $(GO) test -count=1 -p 1 $(HOSTNET_PKGS)

# Mutation tests (docs/testing.md): each mutant in tests/mutants.txt
# removes one security check in a copy of the tree; its tests must fail.
# mutate-ci is the quick unit-level tier that make test runs; mutate runs
# the whole list (the root tier only as root).
mutate:
	$(GO) run ./tests/mutate -tier all

mutate-ci:
	$(GO) run ./tests/mutate -tier ci

functional: all
	RKT_TEST_ROOT=1 RKT_BIN=$(CURDIR)/$(BIN)/rkt $(GO) test -count=1 -timeout 20m ./tests/

# Man pages come from the CLI itself, built with the generator (-tags mangen).
build/rkt-mangen: FORCE
	CGO_ENABLED=0 $(GO) build -tags mangen -o $@ ./rkt

man: build/rkt-mangen
	rm -rf dist/man && build/rkt-mangen gen-man dist/man

check-man: build/rkt-mangen
	@tmp=$$(mktemp -d) && build/rkt-mangen gen-man $$tmp && diff -r dist/man $$tmp >/dev/null || { rm -rf $$tmp; echo "dist/man is stale: run make man"; exit 1; }; rm -rf $$tmp

FORCE:

# Units and tmpfiles go to $(PREFIX)/lib (systemd reads /usr/local/lib and
# /usr/lib), with the rkt path in them set to $(PREFIX)/bin/rkt; the example
# pod unit goes to the documentation. tests/units checks them with
# systemd-analyze verify after an install into a DESTDIR.
UNITDIR ?= $(PREFIX)/lib/systemd/system
UNITS   := rkt-gc.service rkt-gc.timer rkt-pod@.service rkt-metadata.service rkt-metadata.socket
install: all
	install -D -m 0755 $(BIN)/rkt $(DESTDIR)$(PREFIX)/bin/rkt
	for f in $(wildcard $(BIN)/stage1-*.aci); do install -D -m 0644 $$f $(DESTDIR)$(PREFIX)/bin/$$(basename $$f); done
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 && install -m 0644 dist/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(PREFIX)/share/doc/rkt
	for u in $(UNITS); do sed 's|/usr/local/bin/rkt|$(PREFIX)/bin/rkt|g' dist/systemd/$$u >$(DESTDIR)$(UNITDIR)/$$u && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u; done
	sed 's|/usr/local/bin/rkt|$(PREFIX)/bin/rkt|g' dist/systemd/example-pod.service >$(DESTDIR)$(PREFIX)/share/doc/rkt/example-pod.service
	install -D -m 0644 dist/tmpfiles.d/rkt.conf $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/rkt.conf
	install -D -m 0644 dist/sysusers.d/rkt.conf $(DESTDIR)$(PREFIX)/lib/sysusers.d/rkt.conf
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions && $(BIN)/rkt completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/rkt

demo: all
	scripts/demo.sh

clean:
	rm -rf build
