"""Hypothesis profiles of the input suites, and the counts they print.

    ci     (CI=true)  25 examples a property: the suite adds well under two minutes
    dev    (default)  25 examples a property
    long   HYPOTHESIS_PROFILE=long: 1,000 examples a property (docs/input-validation.md)
"""

from __future__ import annotations

import os

import pytest
from bad_input import COUNTS, World
from hypothesis import HealthCheck, settings

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
               print_blob=True)
settings.register_profile("ci", max_examples=25, derandomize=False, **_COMMON)
settings.register_profile("dev", max_examples=25, **_COMMON)
settings.register_profile("long", max_examples=1000, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("world"))


def pytest_terminal_summary(terminalreporter):
    if not COUNTS["generated"]:
        return
    kinds = ", ".join(f"{k.split(' ', 1)[1]} {v}" for k, v in sorted(COUNTS.items()) if k.startswith("generated "))
    terminalreporter.write_line(
        f"input fuzz ({settings.get_current_profile_name()} profile): generated {COUNTS['generated']} ({kinds}), accepted {COUNTS['accepted']}, "
        f"rejected {COUNTS['rejected']}, tracebacks: {COUNTS['tracebacks']}, "
        f"store changed by a rejected input: {COUNTS['store changed by a rejected input']}")
