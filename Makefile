# The two commands of the README:
#   make synth   sets up the toolchain and runs the synth check (every stack, real bundling, AWS's own checks)
#   make test    sets up everything the tests need and runs every test, then the synth check and its self-test
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
GO_PKGS_RUNTIME := ./lambdas/... ./internal/... ./policies/... ./cmd/...

.PHONY: setup setup-test synth test lint unit synth-check synth-check-selftest lambdas bench clean

setup:
	@scripts/setup.sh synth

setup-test:
	@scripts/setup.sh test

synth: setup synth-check

test: setup-test lint unit synth-check synth-check-selftest

lambdas:
	@scripts/build-lambdas.sh

# Formatting, vet, and the rule that runtime code never links the CDK or jsii (small Lambdas, millisecond tests).
lint:
	@echo "==> gofmt, go vet, import boundary"
	@out=$$(git ls-files '*.go' | xargs gofmt -l); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	@go vet ./...
	@leaks=$$(go list -deps -test $(GO_PKGS_RUNTIME) | grep -E 'aws-cdk-go|jsii-runtime-go' | sort -u); \
	 if [ -n "$$leaks" ]; then echo "runtime packages import CDK/jsii: $$leaks"; exit 1; fi

unit:
	@echo "==> go test"
	@go test -count=1 ./...

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

clean:
	rm -rf build cdk.out
