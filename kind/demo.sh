#!/usr/bin/env bash
# `make demo`: the operator and its hybrid router end to end on a served local cluster named
# "demo" (or --name N). The steps live in devtools/demo.py; this only picks the interpreter.
#   kind/demo.sh [--name N] [--requests N]
# Needs root (the served cluster's network namespace) and the project's .venv (`make venv`).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
exec "$repo/.venv/bin/python" -m devtools.demo "$@"
