"""`python -m gradcheck` is the same command as the `gradcheck` script."""

import subprocess
import sys

from conftest import ROOT


def test_python_m_gradcheck_runs_the_command():
    shown = subprocess.run(
        [sys.executable, "-m", "gradcheck", "--input-shape", "0,5", "x.py:Layer"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 2, shown
    assert shown.stdout == ""
    assert shown.stderr.startswith("gradcheck: --input-shape '0,5'"), shown.stderr
