# The two commands of the README:
#   make synth   sets up the toolchain and runs the synth check (every stack, real bundling, AWS's own checks)
#   make test    sets up everything the tests need, then runs the lint, every test, the tools' builds, the synth check
#                and its self-test side by side (independent work: the 2-core machine is kept busy; output per step)
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
# -trimpath keeps the checkout's path out of the build cache's keys (go vet, staticcheck, go test, go run): a fresh clone
# (CI, a second worktree) reuses what an earlier checkout compiled and analysed instead of doing it all again.
export GOFLAGS := -trimpath
GO_PKGS_RUNTIME := ./lambdas/... ./internal/... ./policies/... ./cmd/...
# staticcheck, pinned: `go run` fetches exactly this version once and keeps it in the module cache.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# The device- and producer-side tools `make tools` builds as static binaries, and the platforms it builds them for.
TOOLS := create-csr publish register device-cert vend-token rotation-hosts policy-check device-agent device-rotation cert-report
TOOL_PLATFORMS := linux/amd64 linux/arm64 darwin/arm64 windows/amd64

.PHONY: setup setup-test synth test checks lint unit synth-check synth-check-selftest lambdas bench bench-feedback clean tools ls

setup:
	@scripts/setup.sh synth

setup-test:
	@scripts/setup.sh test

synth: setup synth-check

test: setup-test
	@$(MAKE) --no-print-directory -j 5 --output-sync=target checks

# Independent of one another: they read the set-up tree and write only their own outputs (dist/, cdk.out/check,
# cdk.out/check-bad, temporary directories). Each step's output appears when it ends.
checks: lint unit tools synth-check synth-check-selftest

lambdas:
	@scripts/build-lambdas.sh

# Formatting, vet, staticcheck, and the rule that runtime code never links the CDK or jsii (small Lambdas, millisecond
# tests). A seed's verbatim message or AWS's own error text carries a //lint:ignore directive that says so.
lint:
	@echo "==> gofmt, go vet, staticcheck, import boundary"
	@out=$$(git ls-files '*.go' | xargs gofmt -l); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	@go vet ./...
	@go run $(STATICCHECK) ./...
	@leaks=$$(go list -deps -test $(GO_PKGS_RUNTIME) | grep -E 'aws-cdk-go|jsii-runtime-go' | sort -u); \
	 if [ -n "$$leaks" ]; then echo "runtime packages import CDK/jsii: $$leaks"; exit 1; fi

# go vet runs in full in lint, so go test skips its own subset of vet checks.
unit:
	@echo "==> go test"
	@go test -vet=off -count=1 ./...

synth-check:
	@echo "==> synth check"
	@go run ./cmd/synthcheck

# The synth check must fail on a deliberately bad app, naming each problem.
synth-check-selftest:
	@echo "==> synth check self-test (a deliberately bad app must fail)"
	@go run ./cmd/synthcheck -app "go run ./testdata/badapp" -out cdk.out/check-bad -expect-fail \
		-expect "CloudFormation-Validate::F3012,AwsSolutions-IAM5,AwsSolutions-S10,IAM_INLINE_POLICY_NO_STATEMENTS_WITH_FULL_ACCESS_CHECK,iot-action-wildcard,iot-resource-wildcard"

bench:
	@scripts/bench.sh

# The README's two commands timed in a fresh clone, with the machine's load (figures in docs/PERFORMANCE.md).
bench-feedback:
	@scripts/bench-feedback.sh

# Static binaries (CGO off) of the device-, producer- and operator-side tools in dist/<os>-<arch>/, for machines without
# Go: one go build per platform, which links the tools in parallel.
tools:
	@echo "==> tools: $(TOOLS) for $(TOOL_PLATFORMS) into dist/"
	@set -e; for p in $(TOOL_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; [ "$$os" = windows ] && ext=.exe; \
	  mkdir -p dist/$$os-$$arch; \
	  GOOS=$$os GOARCH=$$arch CGO_ENABLED=0 GOFLAGS= go build -trimpath -ldflags="-s -w" -o dist/$$os-$$arch/ $(addprefix ./cmd/,$(TOOLS)); \
	  for t in $(TOOLS); do \
	    go version -m dist/$$os-$$arch/$$t$$ext | grep -q 'CGO_ENABLED=0' || { echo "dist/$$os-$$arch/$$t$$ext is not static"; exit 1; }; \
	  done; \
	done
	@ls dist/*/* | sed 's/^/    /'

# Every stack the app can define, per selection (`cdk ls` shows only the current selection).
ls:
	@scripts/ls.sh

clean:
	rm -rf build cdk.out dist
