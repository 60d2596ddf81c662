#!/usr/bin/env bash
# The reference implementations in their own virtualenv: GrowthBook's gbstats 0.8.0 (MIT; it
# needs numpy < 2, which the product does not pin), statsmodels and scipy. Never a dependency
# of hitstream; used only by make_reference.py.
#   tests/reference/gbstats_venv.sh            # creates .local/gbstats-venv (idempotent)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.local/gbstats-venv
PYTHON=${PYTHON:-python3.11}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import gbstats, statsmodels" 2>/dev/null; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q "gbstats==0.8.0" "numpy<2" "statsmodels==0.14.4"
fi
"$VENV/bin/python" -m pip list 2>/dev/null | grep -iE '^(gbstats|numpy|scipy|statsmodels) '
