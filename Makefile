# The two set-up commands of README.md. Each installs what it needs (scripts/bootstrap).
.PHONY: demo test release bench
PY := .venv/bin/python

demo:
	@scripts/bootstrap
	@.venv/bin/course demo

test:
	@scripts/bootstrap
	@.venv/bin/python -m pytest -q tests

release:
	@scripts/bootstrap
	@.venv/bin/course release

bench:
	@scripts/bootstrap
	@.venv/bin/python -m bench
