# ul2tp — userspace L2TP. `make help` lists the targets.
GO      ?= go
BIN     ?= bin
export KP_CACHE ?= /var/tmp/ul2tp-kp
export KP_RUN   ?= /tmp/kp
HARNESS ?= $(abspath ../shared/harness)

.PHONY: all build deps test unit demo interop interop-v2 interop-v2-kernel bench scale scale-v2 scale-ppp fuzz lint bigendian cross rss container container-test help clean

all: build

help:
	@echo "make build    build ul2tpd and ul2tp into $(BIN)/"
	@echo "make demo     (root) two namespaces, a pseudowire, ping + iperf3 through it"
	@echo "make test     unit tests, fuzz seeds, and (as root) netns end-to-end tests"
	@echo "make unit     unit tests only (no root needed)"
	@echo "make interop  (root) against the Linux kernel and QEMU in ../shared/harness, then interop-v2 and interop-ppp"
	@echo "make interop-v2  (root) L2TPv2 LNS and LAC against xl2tpd and l2tpns (harness v2-peers)"
	@echo "make interop-v2-kernel  (root) L2TPv2 LAC/LNS against xl2tpd + pppd + kernel PPPoL2TP in the harness's VM"
	@echo "make interop-ppp  (root) PPP on L2TPv2 calls (PAP, CHAP, MS-CHAPv2) against pppd in the VM and l2tpns"
	@echo "make bench    (root) throughput and packet-rate table"
	@echo "make scale    (root) 10,000 sessions on one daemon: RSS, fds, goroutines, create/delete rates"
	@echo "make scale-v2 (root) one L2TPv2 LNS daemon with 1,000 tunnels and 10,000 calls: setup rate, memory, idle CPU"
	@echo "make scale-ppp (root) one LNS daemon with 1,000 PPP calls (100 tunnels x 10) from our LAC, traffic through each: setup rate, memory, idle CPU, teardown"
	@echo "make fuzz     run every fuzz target for FUZZTIME (default 20s) each"
	@echo "make lint     gofmt, go vet, staticcheck"
	@echo "make bigendian  vet for MIPS; run the offload and TAP tests under qemu-mips"
	@echo "make cross    static router builds (arm64, arm v7, mipsle softfloat, riscv64) into $(BIN)/cross/ and their sizes"
	@echo "make rss      (root) ul2tpd's RSS idle and with 100 sessions passing traffic"
	@echo "make container  image $(IMAGE) FROM scratch with bin/ul2tpd and bin/ul2tp (docs/container.md; no pull)"
	@echo "make container-test  (root, a docker daemon) build and run the image: LNS with CAP_NET_ADMIN only, our LAC pings through"

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/ ./cmd/ul2tpd ./cmd/ul2tp

deps:
	@bash .ci/deps

demo: deps build
	bash cmd/demo/demo.sh $(BIN)

# The README's test command. End-to-end tests skip with a reason unless root.
test: deps build
	$(GO) test -count=1 -timeout 20m ./...

unit:
	$(GO) test -count=1 -short ./...

# All three run, whatever the earlier results; fails if any failed.
interop: build
	bash cmd/interop/interop.sh $(BIN) "$(HARNESS)"; l2tpv3=$$?; \
	bash cmd/interop/v2-interop.sh $(BIN) "$(HARNESS)"; v2=$$?; \
	bash cmd/interop/v2-ppp-interop.sh $(BIN) "$(HARNESS)" && exit $$((l2tpv3 | v2))

# L2TPv2 control plane against xl2tpd and l2tpns (shared/harness/v2-peers).
interop-v2: build
	bash cmd/interop/v2-interop.sh $(BIN) "$(HARNESS)"

interop-v2-kernel: build
	bash cmd/interop/v2-kernel-interop.sh $(BIN) "$(HARNESS)"

# PPP on L2TPv2 calls against pppd (kernel-peer VM) and l2tpns (v2-peers);
# docs/interop.md "PPP against real peers".
.PHONY: interop-ppp
interop-ppp: build
	bash cmd/interop/v2-ppp-interop.sh $(BIN) "$(HARNESS)"

bench: deps build
	bash bench/bench.sh $(BIN)

# docs/performance.md "Scale" has the figures.
scale: build
	UL2TP_SCALE=1 $(GO) test -count=1 -timeout 30m -run '^TestE2EScale$$' -v ./cmd/ul2tpd

scale-v2: build
	UL2TP_SCALE=1 $(GO) test -count=1 -timeout 30m -run '^TestE2EScaleL2TPv2$$' -v ./cmd/ul2tpd

scale-ppp: build
	UL2TP_SCALE=1 $(GO) test -count=1 -timeout 30m -run '^TestE2EScalePPP$$' -v ./cmd/ul2tpd

FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags nometrics ./...  # the router build without the Prometheus client
	cd bench && $(GO) vet ./...  # bench/ is a module of its own (the report's gonum)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...  # = staticcheck 2026.2.2
	cd bench && $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# The virtio_net_hdr byte order on a big-endian host: vet for MIPS, build
# the offload and TAP tests, and run them under qemu-mips when installed
# (apt-get install qemu-user; the TAP test needs root).
bigendian:
	GOARCH=mips $(GO) vet ./...
	@for p in offload tap; do \
		GOARCH=mips $(GO) test -c -o $(BIN)/$$p.test.mips ./datapath/$$p || exit 1; \
		if command -v qemu-mips >/dev/null; then \
			echo "== qemu-mips datapath/$$p"; qemu-mips $(BIN)/$$p.test.mips -test.count=1 || exit 1; \
		else echo "qemu-mips missing: datapath/$$p built, not run"; fi; \
	done

# Router builds: static, stripped, one directory per target, each with
# ul2tpd, ul2tpd-nometrics (build tag nometrics: no Prometheus client, for
# small flash) and ul2tp. docs/operations.md "Router builds" has the sizes.
CROSS ?= arm64 arm:GOARM=7 mipsle:GOMIPS=softfloat riscv64
CROSSFLAGS = -trimpath -ldflags '-s -w'
cross:
	@set -e; for t in $(CROSS); do \
		arch=$${t%%:*}; var=; case $$t in *:*) var=$${t#*:};; esac; \
		out=$(BIN)/cross/linux-$$arch; mkdir -p $$out; \
		echo "== linux/$$arch $$var"; \
		env CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $$var $(GO) build $(CROSSFLAGS) -o $$out/ ./cmd/ul2tpd ./cmd/ul2tp; \
		env CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $$var $(GO) build $(CROSSFLAGS) -tags nometrics -o $$out/ul2tpd-nometrics ./cmd/ul2tpd; \
	done; \
	printf '\n%-14s %-16s %10s %18s %10s\n' target variant ul2tpd ul2tpd-nometrics ul2tp; \
	for t in $(CROSS); do \
		arch=$${t%%:*}; var=-; case $$t in *:*) var=$${t#*:};; esac; out=$(BIN)/cross/linux-$$arch; \
		printf '%-14s %-16s %10s %18s %10s\n' linux/$$arch $$var $$(stat -c %s $$out/ul2tpd $$out/ul2tpd-nometrics $$out/ul2tp); \
	done

# ul2tpd's resident memory idle and with 100 sessions passing traffic;
# the figures are in docs/operations.md "Router builds".
rss: deps build
	bash bench/rss.sh $(BIN)

# The LNS in a container (docs/container.md): the Dockerfile's runtime
# target copies the static binaries of "make build", so it needs no base
# image from a registry; without --target it builds them from source.
DOCKER ?= docker
IMAGE  ?= ul2tpd
container: build
	$(DOCKER) build -f docs/container/Dockerfile --target runtime -t $(IMAGE) .

# Not in "make test": CI has no docker daemon. TestE2EContainerCaps, which
# runs the same files in a namespace with CAP_NET_ADMIN only, is.
container-test: deps build
	UL2TP_CONTAINER_TEST=1 $(GO) test -count=1 -timeout 15m -run '^TestE2EContainer' -v ./cmd/ul2tpd

clean:
	rm -rf $(BIN)
