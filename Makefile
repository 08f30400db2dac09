# EnergiTech predictive-maintenance cockpit — every target matches a CI job or a README step.
# `make help` lists them.
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST := .venv/bin/pytest
export OMP_NUM_THREADS ?= 1

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

setup: ## Install system packages, the Python virtualenv (requirements.lock) — idempotent
	@bash deploy/local/setup.sh

# Ports come from COCKPIT_*_PORT variables; deploy/local/env.sh derives the service URLs from them.
LOCAL_ENV := source deploy/local/env.sh &&

up: setup ## Start local Kafka (KRaft) and PostgreSQL, apply migrations, create the Kafka topics, start Prometheus + Alertmanager
	@bash deploy/local/stack.sh up
	@$(LOCAL_ENV) $(PY) -m common migrate
	@$(LOCAL_ENV) $(PY) -m common topics
	@bash deploy/local/monitoring.sh up

down: ## Stop the local cockpit processes and the stack
	@bash deploy/local/run.sh stop || true
	@bash deploy/local/stack.sh down

status: ## Show what runs where
	@bash deploy/local/stack.sh status || true
	@bash deploy/local/run.sh status || true

logs: ## Tail the stack logs (make logs SERVICE=kafka|postgres|scorer|api|producer|prometheus|alertmanager)
	@if [[ "$(SERVICE)" =~ ^(scorer|api|producer|prometheus|alertmanager)$$ ]]; then tail -n 50 .stack/logs/$(SERVICE).log; else bash deploy/local/stack.sh logs $(SERVICE); fi

reset: ## Stop everything and delete local Kafka and PostgreSQL data
	@bash deploy/local/run.sh stop || true
	@bash deploy/local/stack.sh reset

migrate: ## Apply database migrations (COCKPIT_DATABASE_URL)
	@$(LOCAL_ENV) $(PY) -m common migrate

topics: ## Create the missing Kafka topics (COCKPIT_KAFKA_BOOTSTRAP_SERVERS); idempotent
	@$(LOCAL_ENV) $(PY) -m common topics

run: ## Set up and run the whole cockpit locally (timed steps), then print where to look
	@bash deploy/local/run.sh start

test: ## Run the whole test suite (unit + integration on real Kafka/PostgreSQL + browser)
	@bash deploy/local/setup.sh --browser
	@$(PYTEST) tests

test-unit: setup ## Unit tests only (no services)
	@$(PYTEST) tests/unit -m unit

test-integration: setup ## Integration tests only (real services, started if needed)
	@bash deploy/local/setup.sh --browser
	@$(PYTEST) tests/integration -m integration

test-acceptance: setup ## The README's own commands in a fresh clone on free ports (~8-12 min)
	@bash deploy/local/setup.sh --browser
	@$(PYTEST) tests/acceptance -m acceptance

# The CI's reports, locally (same pytest-cov options as the GitLab unit job); TESTS= picks a subset.
test-report: setup ## Suite with JUnit + coverage reports: test-artifacts/junit.xml, coverage.xml, coverage-html/ (TESTS=tests/unit)
	@bash deploy/local/setup.sh --browser
	@mkdir -p test-artifacts
	@$(PYTEST) $(or $(TESTS),tests) --junitxml=test-artifacts/junit.xml \
	  --cov=common --cov=simulator --cov=producers --cov=models --cov=scorer --cov=api \
	  --cov-report=xml:test-artifacts/coverage.xml --cov-report=html:test-artifacts/coverage-html --cov-report=term

check-alerts: ## promtool: check the alert rules and run their unit tests (deploy/prometheus/tests)
	@command -v promtool >/dev/null || bash deploy/local/setup.sh
	@promtool check rules deploy/prometheus/alerts.yml
	@promtool test rules deploy/prometheus/tests/alerts_test.yml

lint: setup ## ruff and mypy
	@.venv/bin/ruff check .
	@.venv/bin/mypy common simulator producers models scorer api

# Promotion gate (docs/models.md): a fresh clone has no production model, so the small "ci" preset of
# models/config/gate.yaml is trained into a temp registry and gated against its committed reference figures.
model-gate: setup ## Train + evaluate the small "ci" preset in a temp registry and run the promotion gate (~2-8 min)
	@$(PY) -m models ci-gate

bench: setup ## Run the benchmarks under bench/ (ratios against same-run baselines)
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# Local staging (deploy/staging/deploy.sh, docs/cd.md): a release of HEAD in .stack/staging, own ports
# (STAGING_API_PORT 8100, STAGING_SCORER_PORT 6166), database cockpit_staging and staging.* topics.
deploy-staging: setup ## Build a release of HEAD, deploy it under supervisord, smoke test, roll back on failure
	@bash deploy/local/stack.sh up
	@bash deploy/staging/deploy.sh deploy

staging-status: ## Local staging: releases, supervised processes, last smoke test
	@bash deploy/staging/deploy.sh status

staging-down: ## Stop the local staging (supervisord, scorer, API); releases, database and model are kept
	@bash deploy/staging/deploy.sh down

drills: setup ## Incident drills of docs/runbooks/ on sandbox cockpits (local stack; never the dev cockpit)
	@bash deploy/local/stack.sh up
	@for d in ci_red_risk_score sweep_failed cockpit_unreachable; do $(PY) deploy/drills/$$d.py || exit 1; done

.PHONY: help setup up down status logs reset migrate topics run test test-unit test-integration test-acceptance lint bench
.PHONY: check-alerts
.PHONY: deploy-staging staging-status staging-down drills

# French deliverables (docs/fr/README.md): pandoc + Chromium from Debian, mermaid-cli + marp-cli from npm.
docs: ## Render the French deliverables (docs/fr/*.md) to HTML and PDF in docs/fr/_build/
	@bash deploy/local/setup.sh --docs
	@bash docs/fr/build/build.sh

.PHONY: test-report docs
.PHONY: model-gate
