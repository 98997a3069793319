# s3logs: build, package as a Docker managed plugin, test, demo, publish.
# Needs Go and make. `make demo` and `make test` install and start what else
# they need (scripts/engine.sh: Debian's docker.io, zstd, jq, awscli, curl,
# docker-registry; as root); the other Docker targets need a running engine.
# Nothing is pulled from a public registry.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO ?= go
# Name the plugin is installed under; containers use --log-driver $(PLUGIN).
PLUGIN ?= s3logs:latest
# Host directory bind-mounted as the plugin's spool (the "spool" mount source).
SPOOL ?= /var/lib/s3logs
# Tag of the throwaway image whose filesystem becomes the plugin rootfs.
ROOTFS_IMAGE ?= s3logs-rootfs:build
# Tag of the test image running cmd/loggen (e2e tests and demo).
LOGGEN_IMAGE ?= s3logs-loggen:test
# Pinned MinIO used as the S3 server by integration tests, e2e and demo.
MINIO_MODULE := $(shell cat internal/miniotest/minio.module)
# Extra flags for the e2e run, e.g. E2E_FLAGS='-run TestE2E/utf8'.
E2E_FLAGS ?=
CA_BUNDLE ?= /etc/ssl/certs/ca-certificates.crt

# Every package except the end-to-end suite, which needs the installed plugin.
UNIT_PKGS = $$($(GO) list ./... | grep -v '/e2e$$')

.PHONY: FORCE all build rootfs plugin push loggen-image test unit e2e demo bench bench-go bench-e2e nullplugin bench-image clean distclean minio check-monitoring

all: build

## build: static binaries bin/s3logs and bin/loggen
build: bin/s3logs bin/loggen

# Always handed to go build, which rebuilds only what changed.
bin/s3logs bin/loggen: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $@ ./cmd/$(@F)

FORCE:

## rootfs: build/plugin/{config.json,rootfs/} from the Dockerfile (FROM scratch)
rootfs: bin/s3logs
	rm -rf build/rootfs-context build/plugin
	mkdir -p build/rootfs-context build/plugin/rootfs
	cp bin/s3logs build/rootfs-context/s3logs
	cp $(CA_BUNDLE) build/rootfs-context/ca-certificates.crt
	docker build -q -t $(ROOTFS_IMAGE) -f Dockerfile build/rootfs-context >/dev/null
	docker image prune -f --filter label=s3logs.build >/dev/null
	id=$$(docker create $(ROOTFS_IMAGE)); \
	  trap 'docker rm -f "$$id" >/dev/null' EXIT; \
	  docker export "$$id" | tar -x -C build/plugin/rootfs
	cp config.json build/plugin/config.json
	test -x build/plugin/rootfs/s3logs

## plugin: install (or reinstall) the plugin as $(PLUGIN) and enable it
plugin: rootfs
	PLUGIN=$(PLUGIN) SPOOL=$(SPOOL) scripts/install-plugin.sh

## push: publish this build to a registry as $(PLUGIN), e.g. make push PLUGIN=registry.example.com/s3logs:1.0.0
push: rootfs
	PLUGIN=$(PLUGIN) scripts/push-plugin.sh

## loggen-image: the test image $(LOGGEN_IMAGE) (FROM scratch + bin/loggen)
loggen-image: bin/loggen
	rm -rf build/loggen-context
	mkdir -p build/loggen-context
	cp bin/loggen build/loggen-context/loggen
	docker build -q -t $(LOGGEN_IMAGE) -f e2e/testdata/Dockerfile.loggen build/loggen-context >/dev/null
	docker image prune -f --filter label=s3logs.build >/dev/null

## minio: the pinned MinIO server in bin/minio (built once, ~2.5 min)
minio: bin/minio

bin/minio:
	GOBIN=$(CURDIR)/bin $(GO) install $(MINIO_MODULE)

## test: unit and MinIO integration tests with -race, the query/ module, then the
## e2e suite; starts (and afterwards stops) a Docker Engine if none runs,
## installing what is missing
test:
	S3LOGS_ENGINE_BY='make test' scripts/engine.sh run test -- $(MAKE) --no-print-directory unit query-test e2e

unit: minio check-monitoring
	$(GO) vet ./...
	$(GO) test -race -count=1 $(UNIT_PKGS)
	# The resync sweep's full million cut points (every fourth under -race).
	$(GO) test -count=1 -run '^TestResyncSweep$$' ./driver/fifo/

# promtool: the one on PATH, else bin/promtool taken out of Debian's
# prometheus package with `apt-get download` (installing the package would
# start a Prometheus server; nothing is installed or started this way).
PROMTOOL ?= $(or $(shell command -v promtool 2>/dev/null),$(CURDIR)/bin/promtool)

## check-monitoring: promtool checks the example scrape config, the alert rules (and runs their tests) and the dashboard's queries
check-monitoring: $(PROMTOOL)
	$(PROMTOOL) check config monitoring/prometheus.yml
	$(PROMTOOL) check rules monitoring/alerts.yml
	$(PROMTOOL) test rules monitoring/alerts_test.yml
	# Every dashboard query, its variables filled in, as a recording rule promtool parses.
	mkdir -p build
	jq '{groups: [{name: "dashboard", rules: ([.panels[] | .targets[]? | .expr] | to_entries | map({record: "dashboard:query_\(.key)", expr: (.value | gsub("\\$$__rate_interval"; "5m") | gsub("\\$$(instance|job)"; ".*"))}))}]}' \
	  monitoring/grafana-dashboard.json > build/dashboard-queries.yml
	$(PROMTOOL) check rules build/dashboard-queries.yml

$(CURDIR)/bin/promtool:
	mkdir -p $(@D)
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cd "$$tmp"; \
	  apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus; }; \
	  dpkg-deb --fsys-tarfile prometheus_*.deb | tar -x ./usr/bin/promtool; \
	  install -m 0755 usr/bin/promtool $@

## e2e: reinstall the plugin, then run the end-to-end suite against Docker and MinIO
e2e: plugin minio
	S3LOGS_PLUGIN=$(PLUGIN) S3LOGS_LOGGEN_IMAGE=$(LOGGEN_IMAGE) \
	  $(GO) test -race -count=1 -timeout 30m -parallel 8 -v $(E2E_FLAGS) ./e2e

# query/ is a separate Go module: DuckDB's Go bindings need cgo (and a C
# compiler), the plugin's module stays cgo-free. The first build downloads
# DuckDB's prebuilt static library (about 32 MB) and links it (see the
# README's Query in place section and query/cmd/duckjson).
.PHONY: query-test
## query-test: vet and test query/ (cmd/duckjson: embedded DuckDB, used by e2e's TestQueryInPlace)
query-test:
	cd query && CGO_ENABLED=1 $(GO) vet ./... && CGO_ENABLED=1 $(GO) test -count=1 ./...

## demo: install the plugin, log a container to a throwaway MinIO, print what landed in S3;
## starts a Docker Engine if none runs, installing what is missing, and leaves it running
demo:
	S3LOGS_ENGINE_BY='make demo' scripts/engine.sh up demo
	$(MAKE) --no-print-directory plugin loggen-image minio
	PLUGIN=$(PLUGIN) LOGGEN_IMAGE=$(LOGGEN_IMAGE) MINIO=$(CURDIR)/bin/minio scripts/demo.sh
	@scripts/engine.sh status

# Benchmark null plugin (cmd/nullplugin) and workload image (bench/gen).
NULL_PLUGIN ?= s3logs-null:latest
NULL_ROOTFS_IMAGE ?= s3logs-null-rootfs:build
BENCH_IMAGE ?= s3logs-benchgen:latest
# Extra flags for the harness, e.g. BENCH_FLAGS='-parts e2e -workloads short'.
# RUNS=n sets the pairs per configuration (default 5); QUICK=1 is a smoke run.
BENCH_FLAGS ?=
# BENCH_NO_INSTALL=1 benchmarks the installed $(PLUGIN) instead of reinstalling it.
BENCH_NO_INSTALL ?=

bin/nullplugin: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $@ ./cmd/nullplugin

bin/benchgen: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $@ ./bench/gen

## nullplugin: install (or reinstall) the discarding benchmark plugin as $(NULL_PLUGIN)
nullplugin: bin/nullplugin
	rm -rf build/nullplugin-context build/nullplugin
	mkdir -p build/nullplugin-context build/nullplugin/rootfs
	cp bin/nullplugin build/nullplugin-context/nullplugin
	docker build -q -t $(NULL_ROOTFS_IMAGE) -f bench/nullplugin/Dockerfile build/nullplugin-context >/dev/null
	docker image prune -f --filter label=s3logs.build >/dev/null
	id=$$(docker create $(NULL_ROOTFS_IMAGE)); \
	  trap 'docker rm -f "$$id" >/dev/null' EXIT; \
	  docker export "$$id" | tar -x -C build/nullplugin/rootfs
	cp bench/nullplugin/config.json build/nullplugin/config.json
	if docker plugin inspect $(NULL_PLUGIN) >/dev/null 2>&1; then \
	  docker plugin disable --force $(NULL_PLUGIN) >/dev/null 2>&1 || true; \
	  docker plugin rm --force $(NULL_PLUGIN); \
	fi
	docker plugin create $(NULL_PLUGIN) build/nullplugin
	docker plugin enable $(NULL_PLUGIN)

## bench-image: the workload image $(BENCH_IMAGE) (FROM scratch + bin/benchgen)
bench-image: bin/benchgen
	rm -rf build/benchgen-context
	mkdir -p build/benchgen-context
	cp bin/benchgen build/benchgen-context/gen
	docker build -q -t $(BENCH_IMAGE) -f bench/gen/Dockerfile build/benchgen-context >/dev/null
	docker image prune -f --filter label=s3logs.build >/dev/null

## bench: Go benchmarks on one core, then the end-to-end harness (bench/results.md)
bench: bench-go bench-e2e

bench-go:
	mkdir -p build
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 $(UNIT_PKGS) | tee build/bench-go.txt

bench-e2e: $(if $(BENCH_NO_INSTALL),,plugin) nullplugin bench-image minio
	PLUGIN=$(PLUGIN) NULL_PLUGIN=$(NULL_PLUGIN) BENCH_IMAGE=$(BENCH_IMAGE) MINIO=$(CURDIR)/bin/minio \
	  $(GO) run ./bench -gobench build/bench-go.txt -out bench/results.md $(BENCH_FLAGS)

## clean: remove build output and the images built here (keeps bin/minio and the installed plugin)
clean:
	rm -rf build bin/s3logs bin/loggen bin/nullplugin bin/benchgen
	-docker rmi $(ROOTFS_IMAGE) $(LOGGEN_IMAGE) $(NULL_ROOTFS_IMAGE) $(BENCH_IMAGE) >/dev/null 2>&1
	-docker image prune -f --filter label=s3logs.build >/dev/null 2>&1

## distclean: clean, and also remove the cached MinIO binary
distclean: clean
	rm -rf bin
