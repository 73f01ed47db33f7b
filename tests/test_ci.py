"""The rule of tests/conftest.py that a PostgreSQL test skipped under CI=true fails the run."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

SKIPPING = """
import pytest

def test_postgres_storage():
    pytest.skip("no PostgreSQL server binaries")

def test_other():
    pytest.skip("not needed here")
"""


@pytest.mark.parametrize("ci, failed, skipped", [("true", 1, 1), ("", 0, 2)])
def test_a_skipped_postgres_test_fails_under_ci(pytester, monkeypatch, ci, failed, skipped):
    monkeypatch.setenv("CI", ci)
    pytester.makeconftest("from tests.conftest import pytest_runtest_makereport  # noqa: F401\n")
    pytester.makepyfile(test_skips=SKIPPING)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=failed, skipped=skipped)
    if failed:
        result.stdout.fnmatch_lines(["*test_postgres_storage was skipped under CI=true*no PostgreSQL server binaries*"])
