"""Suite-wide fixtures: external tools and a running switch process.

Under CI=true a missing external tool is a failure, never a skip: the test command
installs them, so a missing one means the install step is broken."""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis in the test command is deterministic: each test draws the same examples on
# every run and machine (derandomize), nothing is replayed from a local example database,
# and no verdict depends on how busy the machine is (no deadline, no too-slow check).
# Longer fuzzing with fresh random seeds is a separate command: scripts/fuzz.sh.
settings.register_profile(
    "deterministic", derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "fuzz", derandomize=False, database=None, deadline=None, print_blob=True,
    max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


def require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found ({hint}); ./test.sh installs it"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path
