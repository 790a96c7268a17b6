# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install bench modules collection clean ansible-lines sanity

# The second ansible-core line the collection is tested on (2.16; the project venv has 2.19), and
# wheels of everything a clean controller needs: built here, at install time (pip from PyPI), so
# that tests/test_ansible_lines.py creates its fresh venvs offline (nothing is downloaded by a test).
VENVS  := .venvs
WHEELS := $(VENVS)/wheels
LINES  := $(VENVS)/.lines

$(LINES): $(STAMP) pyproject.toml
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELS) . 'setuptools>=68' wheel
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELS) 'ansible-core>=2.16,<2.17'
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELS) 'ansible-core>=2.19,<2.20'
	touch $(LINES)

ansible-lines: $(LINES)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/lync2fa demo

test: $(STAMP) $(LINES)
	PATH="$(CURDIR)/$(BIN):$$PATH" LYNC2FA_WHEELS="$(CURDIR)/$(WHEELS)" $(BIN)/python -m pytest -n 2 -q

# Issue 11's side-by-side benchmark (not part of `make test`; ~1 h on 2 cores): lync2fa, ansible-playbook and a
# naive pywinrm script at 10, 100 and 1,000 clients; e.g. BENCH_ARGS='--clients 10 100' for a shorter run.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/run.py $(BENCH_ARGS)

# After adding or changing a task: regenerate the Ansible modules, action plugins, roles, playbooks.
modules: $(STAMP)
	$(BIN)/python tools/gen_modules.py

collection: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python tools/build_collection.py --output-path dist

# ansible-test sanity on the collection as Galaxy sees it (tools/sanity.sh). Its tools and per-test
# venvs are installed here, once (pip from PyPI); `make sanity` itself downloads nothing.
SANITY_REQS := $(VENV)/lib/python3.11/site-packages/ansible_test/_data/requirements

$(VENVS)/.sanity: $(STAMP)
	$(PYTHON) -m venv $(VENVS)/sanity
	cat $(SANITY_REQS)/sanity.pep8.txt $(SANITY_REQS)/sanity.pylint.txt $(SANITY_REQS)/sanity.validate-modules.txt \
		$(SANITY_REQS)/sanity.yamllint.txt $(SANITY_REQS)/sanity.import.txt $(SANITY_REQS)/sanity.ansible-doc.txt \
		$(SANITY_REQS)/sanity.runtime-metadata.txt | grep -v '^#' | sort -u > $(VENVS)/sanity-requirements.txt
	$(VENVS)/sanity/bin/python -m pip install --quiet "ansible-core==$$($(BIN)/python -c 'import ansible; print(ansible.__version__)')" \
		-r $(VENVS)/sanity-requirements.txt
	tools/sanity.sh prime
	touch $(VENVS)/.sanity

sanity: $(VENVS)/.sanity
	tools/sanity.sh

clean:
	rm -rf $(VENV) $(VENVS) dist build .pytest_cache *.egg-info
