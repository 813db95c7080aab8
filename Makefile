# One command per task; `make test` is what CI runs (.ci/run).
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup git-lfs nginx browser openssh serve test lint typecheck pytest bench clean

setup: $(STAMP) git-lfs nginx browser openssh

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,s3]'
	touch $(STAMP)

# The real client for the end-to-end tests: Debian's git-lfs, installed when missing and we are root.
git-lfs:
	@if ! git lfs version >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git-lfs >/dev/null; \
	  else echo "git-lfs is missing: install it (Debian: apt-get install git-lfs)"; exit 1; fi; \
	fi

# A real load balancer for the rolling-restart test (tests/e2e/test_balancer.py): Debian's nginx-light, installed
# when missing and we are root; without it that test is skipped locally (and fails in CI).
nginx:
	@if ! command -v nginx >/dev/null && ! [ -x /usr/sbin/nginx ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null; \
	  else echo "nginx is missing: the balancer test will be skipped (Debian: apt-get install nginx-light)"; fi; \
	fi

# The web UI's browser tests (tests/ui/test_browser.py): Debian's chromium and chromium-driver, installed when missing
# and we are root, and axe-core from npm for the accessibility audit; without them those tests are skipped locally
# (and fail in CI).
AXE_CORE := axe-core@4.14.1
browser:
	@if ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; \
	  else echo "chromium-driver is missing: the browser tests will be skipped (Debian: apt-get install chromium chromium-driver)"; fi; \
	fi
	-@[ -f tests/ui/node_modules/axe-core/axe.min.js ] || (command -v npm >/dev/null && npm install --silent --no-save --no-package-lock --prefix tests/ui $(AXE_CORE))

serve: setup
	$(BIN)/lfsd serve

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# Two pytest processes at once (2 cores): the end-to-end and browser tests, which mostly wait on real peers (git,
# git-lfs, sshd, Chromium, lfsd processes), beside the in-process ones, which mostly compute. Each process has its
# own databases, Redis key prefix, ports and temporary directories (tests/databases.py, tests/redisserver.py), so
# they cannot collide; the in-process half's report is printed after the other's, and either failing fails the run.
pytest: setup
	@rest=$$(mktemp); \
	$(BIN)/pytest -p no:cacheprovider --ignore=tests/e2e --ignore=tests/ui >"$$rest" 2>&1 & pid=$$!; \
	$(BIN)/pytest tests/e2e tests/ui; e2e=$$?; \
	wait $$pid; code=$$?; \
	echo "==== the in-process tests (run at the same time) ===="; cat "$$rest"; rm -f "$$rest"; \
	test $$e2e = 0 && test $$code = 0

test: lint typecheck pytest

bench: setup
	$(BIN)/python bench/run.py
	@# s3rver (npm) keeps multi-GiB objects on disk; without npm the S3 benchmark falls back to moto's server.
	-@[ -x bench/node_modules/.bin/s3rver ] || (command -v npm >/dev/null && npm install --silent --prefix bench s3rver@3.7.1)
	$(BIN)/python bench/s3.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/small.py --workers 1,2
	$(BIN)/python bench/batch.py --workers 1,2
	$(BIN)/python bench/bigfetch.py
	$(BIN)/python bench/git_hosting.py

clean:
	rm -rf $(VENV) lfsd-data .mypy_cache .pytest_cache .ruff_cache

# A real sshd for the SSH tests (tests/e2e/test_ssh.py): Debian's openssh-server, installed when missing and we are
# root; without it those tests are skipped locally (and fail in CI).
openssh:
	@if ! [ -x /usr/sbin/sshd ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null; \
	  else echo "sshd is missing: the SSH tests will be skipped (Debian: apt-get install openssh-server)"; fi; \
	fi
