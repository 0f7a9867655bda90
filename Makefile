# make run: the dashboard; make test: the test suite. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED ?= $(firstword $(wildcard ../shared /work/shared))

# Offline machines: when KERAS_HOME is not set, use a writable copy of the shared Keras cache if there is one.
ifeq ($(origin KERAS_HOME), undefined)
ifneq ($(wildcard $(SHARED)/keras_home/models),)
export KERAS_HOME := $(CURDIR)/.keras_home
LOCAL_CACHE := $(KERAS_HOME)/models
endif
endif

.PHONY: run test bench load
run: $(VENV)/.runtime $(LOCAL_CACHE)
	$(BIN)/python -m dashboard.serve

test: $(VENV)/.dev $(LOCAL_CACHE)
	$(BIN)/python -m pytest -q tests

bench: $(VENV)/.dev $(LOCAL_CACHE)
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/scorecam_app.py

# How many sessions one server holds (a measurement, minutes): Locust students speaking Streamlit's
# protocol, so the server is measured alone; then browser waves as a cross-check.
load: $(VENV)/.dev $(LOCAL_CACHE)
	$(BIN)/python bench/protocol_load.py
	$(BIN)/python bench/load.py

# keras-hub and tensorflow-text without their dependencies (see requirements.txt).
NO_DEPS := keras-hub==0.32.0 tensorflow-text==2.21.1

$(VENV)/.runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps $(NO_DEPS)
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt
	# tf_keras (the Keras 2 loader, a test reference) depends on the `tensorflow` wheel, which would
	# install TensorFlow a second time over tensorflow-cpu: it only needs the one we have.
	$(BIN)/pip install -q --no-deps tf_keras==2.21.0 $(NO_DEPS)
	touch $@ $(VENV)/.runtime

$(CURDIR)/.keras_home/models:
	mkdir -p $(CURDIR)/.keras_home && cp -r $(SHARED)/keras_home/models $(CURDIR)/.keras_home/ && chmod -R u+w $(CURDIR)/.keras_home
