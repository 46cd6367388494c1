#!/usr/bin/env bash
# Fuzz longer than the test command does: run the property-based tests again and again
# with fresh random seeds (Hypothesis profile "fuzz": up to 1,000 examples per test where
# the test does not fix its own count) until the time is up or one fails.
#   scripts/fuzz.sh [MINUTES] [PYTEST ARGS...]     e.g. scripts/fuzz.sh 60 tests/sip
# A failure prints the falsifying example and a @reproduce_failure blob to paste into
# the test; keep the case as an explicit @example once it is fixed.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
minutes="${1:-30}"
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    # The pure (in-memory) property tests: parsers, state machines, kernels, models.
    mapfile -t targets < <(grep -rl --include='test_*.py' '^from hypothesis' tests \
                           | grep -v -e '^tests/integration/' -e '^tests/browser/' | sort)
fi
deadline=$((SECONDS + minutes * 60))
round=0
while (( SECONDS < deadline )); do
    round=$((round + 1))
    echo "fuzz.sh: round $round ($(( (deadline - SECONDS) / 60 )) min left)" >&2
    HYPOTHESIS_PROFILE=fuzz .venv/bin/python -m pytest -q -p no:cacheprovider -x \
        "${targets[@]}"
done
