# wijkhub — every target works alone on a fresh machine: it installs first.
# Needs python3.11, Java 17+ and Maven on PATH (the Kafka jars and Keycloak come from Maven
# Central), and a Java 21+ for Keycloak (found under /usr/lib/jvm, or WIJKHUB_IDP_JAVA_HOME).

VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml deploy/kafka/pom.xml deploy/keycloak/pom.xml | sha256sum | cut -c1-12)
EVENTS ?= 100000

.PHONY: install demo test test-fast lint bench broker-stop clean

# axe-core (npm) for the inbox's accessibility checks in the browser tests: installed into
# the user's cache by the version in tests/a11y/package.json, never into the repository.
CACHE  := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)
AXE_DIR := $(CACHE)/wijkhub/axe-$(shell sha256sum tests/a11y/package.json | cut -c1-12)
AXE    := $(AXE_DIR)/node_modules/axe-core/axe.min.js

install: $(STAMP) $(AXE)

$(AXE): tests/a11y/package.json
	mkdir -p $(AXE_DIR) && cp tests/a11y/package.json $(AXE_DIR)/package.json
	npm install --prefix $(AXE_DIR) --no-audit --no-fund --silent
	test -f $@

$(STAMP): pyproject.toml deploy/kafka/pom.xml deploy/keycloak/pom.xml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,eval]'
	$(BIN)/python -c "from wijkhub.broker import jar_dir; print('kafka jars:', jar_dir())"
	$(BIN)/python -c "from wijkhub.idp import dist_dir; print('keycloak:', dist_dir())"
	rm -f $(VENV)/.installed-* && touch $@

demo: install
	$(BIN)/wijkhub demo

# mypy does not follow setuptools' editable import hook, and streams/ is installed
# as wijkhub.streams: mypy reads the packages from a tree of links with that
# layout, laid anew on every run (see [tool.mypy] in pyproject.toml).
MYPY_TREE := $(VENV)/mypy-path

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf $(MYPY_TREE) && mkdir -p $(MYPY_TREE)/wijkhub
	ln -s $(CURDIR)/wijkhub/* $(CURDIR)/streams $(CURDIR)/connectors $(CURDIR)/schemas \
		$(MYPY_TREE)/wijkhub/
	$(BIN)/mypy

test: lint
	$(BIN)/wijkhub schemas check
	$(BIN)/pytest

# The inner loop: the unit tier without the tests marked slow, in well under 30 s.
test-fast: install
	$(BIN)/pytest tests/unit -m "not slow" -q

bench: install
	$(BIN)/wijkhub bench --events $(EVENTS) --json

broker-stop:
	-$(BIN)/wijkhub broker stop
	-$(BIN)/wijkhub idp stop

clean: broker-stop
	rm -rf $(VENV) .wijkhub
