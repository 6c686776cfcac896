"""A wheel built from the checkout holds every room of the package and the finding pages, and runs.

An editable install (`pip install -e .`) finds subpackages even when pyproject.toml forgets them,
so this builds a real wheel and uses it alone: its files are compared with the source package,
and the command it holds starts from it (an import, --explain) in a
Python whose path has the unpacked wheel and not the checkout.
"""

import os
import subprocess
import sys
import zipfile

from conftest import ROOT


def test_a_wheel_holds_every_module_and_page_and_its_command_runs(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("gradcheck-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "unpacked")
    package = ROOT / "gradcheck"
    sources = {f"gradcheck/{path.relative_to(package).as_posix()}" for path in package.rglob("*.py")}
    pages = {f"gradcheck/{path.relative_to(package).as_posix()}" for path in (package / "findings").glob("*.md")}
    assert sources - names == set(), "modules the wheel leaves out"
    assert pages and pages - names == set(), "finding pages the wheel leaves out"

    # The unpacked wheel goes first on the path, before the venv's site-packages (numpy, click, rich)
    # and before the editable install's entry, so the import below must resolve to the wheel's copy.
    unpacked = str(tmp_path / "unpacked")
    site = [p for p in sys.path if p.endswith("site-packages")]
    environment = {"PYTHONPATH": os.pathsep.join([unpacked, *site]), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    # Importing every module would import TensorFlow (seconds); the file comparison above already
    # covers presence, so this only proves the command resolves to the wheel and starts.
    imported = subprocess.run([sys.executable, "-c", "import gradcheck.cli.entry, gradcheck; print(gradcheck.__file__)"],
                              cwd=tmp_path, env=environment, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip().startswith(unpacked), imported.stdout

    explained = subprocess.run([sys.executable, "-m", "gradcheck", "--explain", "none-gradient"], cwd=tmp_path,
                               env=environment, capture_output=True, text=True)
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.startswith("# none-gradient (error)"), explained.stdout[:200]
