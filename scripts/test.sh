#!/usr/bin/env bash
# Install everything the test suite needs, then lint, type-check and run the whole suite.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet -e ".[test]"
# torchattacks pins a torchvision that drags in a CUDA build of torch: install it alone.
python -m pip install --quiet --no-deps "torchattacks==3.5.1"
python -m ruff check advlib tests benchmarks examples scripts
python -m mypy advlib
# One worker per core; conftest pins each framework to one thread.
python -m pytest -n 2 "$@"
