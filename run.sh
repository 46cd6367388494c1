#!/usr/bin/env bash
# Install what is missing, then run the switch: ./run.sh [--config FILE]
set -euo pipefail
source "$(dirname "$0")/scripts/bootstrap.sh"
exec .venv/bin/callcenter serve "$@"
