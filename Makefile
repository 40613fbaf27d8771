# Set up from nothing and run: `make run` opens the app, `make test` runs the tests.
# Both create .venv/ on first use. torch and torchvision are pinned here (not in
# pyproject.toml, whose ranges stay open for users) so that the install takes the
# builds this machine keeps on disk.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test screenshot clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[test,train]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py $(ARGS)

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q $(ARGS)

screenshot: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) main.py --screenshot ganvas-window.png $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
