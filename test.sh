#!/usr/bin/env bash
# Install what is missing, then lint, type-check and run the whole test suite.
# Arguments go to pytest: ./test.sh tests/sip -k register
set -euo pipefail
source "$(dirname "$0")/scripts/bootstrap.sh"
source scripts/test_postgres.sh

# External SIP peers for the integration tests: SIPp, baresip, SIPVicious (svwar); and
# Debian's chromium for the browser tests (Playwright drives it; no browser download),
# with a Chinese font so the pages' screenshots (test-artifacts/screenshots) are readable.
if ! apt_install sip-tester baresip sipvicious chromium fonts-wqy-microhei \
        && [[ "${CI:-}" == true ]]; then
    exit 1
fi
for tool in sipp baresip svwar chromium; do
    if ! command -v "$tool" >/dev/null; then
        if [[ "${CI:-}" == true ]]; then
            echo "test.sh: $tool is still missing after installing its package" >&2
            exit 1
        fi
        echo "test.sh: $tool is missing; the tests that need it will be skipped" >&2
    fi
done

# Lint and types first, but run the tests either way so that one run shows everything.
checks=0
.venv/bin/ruff check . || checks=1
# switch.sip is strict through pyproject's [[tool.mypy.overrides]]; the rest is checked
# with the default settings. Packages without Python files yet are left out.
packages=()
for package in switch callcenter apps acd ivr web; do
    if compgen -G "$package/*.py" >/dev/null || compgen -G "$package/**/*.py" >/dev/null; then
        packages+=("$package")
    fi
done
.venv/bin/mypy "${packages[@]}" || checks=1

# A throwaway PostgreSQL server for the data tests' PostgreSQL variants, started only now
# so that it lives no longer than pytest; an EXIT trap stops it and deletes its files.
if ! test_postgres_start; then
    test_postgres_stop
    if [[ "${CI:-}" == true ]]; then
        echo "test.sh: could not start a PostgreSQL server for the tests" >&2
        exit 1
    fi
    echo "test.sh: no PostgreSQL server; the PostgreSQL variants will be skipped" >&2
fi

status=0
.venv/bin/python -m pytest -rs "$@" || status=$?
if [[ $status -eq 0 && $checks -ne 0 ]]; then
    echo "test.sh: tests passed but ruff or mypy reported problems (above)" >&2
    status=1
fi
exit "$status"
