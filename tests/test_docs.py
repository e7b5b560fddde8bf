"""The docs build with one command and without a single warning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")


def test_docs_build_without_warnings(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(ROOT / "docs"), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    api = (tmp_path / "html" / "api.html").read_text(encoding="utf-8")
    # the reference is generated from the docstrings
    assert "workload_map" in api and "Parameters" in api
    guide = (tmp_path / "html" / "guide.html").read_text(encoding="utf-8")
    assert "_static/coverage.png" in guide or "_images/coverage.png" in guide
    assert (tmp_path / "html" / "_images" / "coverage.png").exists() or \
        (tmp_path / "html" / "_static" / "coverage.png").exists()
