# niem-exchange: `make demo` sets up and runs the demo exchange; `make test` runs the test suite.
# Both work on a fresh Debian machine: setup installs the system tools (as root, via apt) and the Python
# environment (.venv, from the committed lock file) when they are missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup system-packages demo test lock clean

$(BIN)/niem-exchange: pyproject.toml requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"
	$(PY) -m uv venv --quiet --allow-existing -p 3.11 $(VENV)
	$(PY) -m uv pip sync --quiet -p $(BIN)/python --only-binary xmlsec --only-binary lxml requirements.lock
	$(PY) -m uv pip install --quiet -p $(BIN)/python --no-deps -e .
	touch $@

system-packages:
	@missing=""; \
	for tool in xmlsec1:xmlsec1 xmllint:libxml2-utils /usr/sbin/sshd:openssh-server java:default-jre-headless; do \
	  command -v $${tool%%:*} >/dev/null 2>&1 || missing="$$missing $${tool##*:}"; \
	done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing openssh-sftp-server >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing openssh-sftp-server >/dev/null; fi; \
	fi

setup: system-packages $(BIN)/niem-exchange

demo: setup
	$(BIN)/niem-exchange demo

test: setup
	$(BIN)/python -m pytest

lock:
	$(PY) -m uv pip compile --quiet --python-version 3.11 --only-binary xmlsec --only-binary lxml \
	  pyproject.toml --all-extras -o requirements.lock

clean:
	rm -rf var $(VENV)
