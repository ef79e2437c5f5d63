"""The code and its tests stay clean: ruff and mypy (strict) as the project configures them."""

from __future__ import annotations

import subprocess
import sys

from tests.harness import ROOT


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing_in_server_client_wire_and_tests() -> None:
    result = run("ruff", "check", "server", "client", "wire", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing_in_server_client_wire_and_tests() -> None:
    """pyproject.toml's [tool.mypy] `files` names the three packages and tests/; browser-only
    modules (js, pyodide) and Playwright's objects are Any."""
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
