#!/bin/sh
# Regenerates requirements.lock: every runtime dependency of pyproject.toml pinned, with the
# hashes of all its files, for the image's Python (3.11) on any platform (amd64, arm64).
#
# Reproducible: a pinned uv resolves against PyPI as it was at EXCLUDE_NEWER, so the same
# pyproject.toml and date give the same file on any machine, however much PyPI has moved
# since. To take newer releases on purpose, move the date forward:
#   EXCLUDE_NEWER=2027-01-15T00:00:00Z ops/lock.sh
# tests/test_ops.py fails when pyproject.toml asks for something the lock does not pin.
set -eu
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
EXCLUDE_NEWER=${EXCLUDE_NEWER:-2026-11-29T00:00:00Z}

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools"
"$tools/bin/pip" install --quiet "uv==$UV_VERSION"
"$tools/bin/uv" pip compile pyproject.toml \
  --universal --python-version 3.11 --generate-hashes \
  --exclude-newer "$EXCLUDE_NEWER" \
  --custom-compile-command "ops/lock.sh (EXCLUDE_NEWER=$EXCLUDE_NEWER)" \
  --output-file requirements.lock --quiet
