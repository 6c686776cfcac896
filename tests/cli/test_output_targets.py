"""`--output` onto what is not a plain new file (issue 30): a device node, a FIFO or a socket is never
replaced by a file (a temporary file renamed over `/dev/null` would replace the machine's
/dev/null, run as root); what cannot be written is exit 2 with one paragraph, nothing replaced; and
no report is written over a source file the checked code imported.

Device nodes are made with mknod in a temporary folder (conftest.char_device), never the real /dev/null.
"""

import os
import shutil
import socket
import stat
import threading

from conftest import ROOT, char_device, run_cli

SCALE = ["tests/data/hostile/in_call.py:Scale", "--input-shape", "4,5", "--no-numeric", "--no-reload", "--json"]


def assert_still_the_device(path: str, minor: int) -> None:
    status = os.stat(path)
    assert stat.S_ISCHR(status.st_mode) and status.st_rdev == os.makedev(1, minor), oct(status.st_mode)


def test_a_null_device_takes_the_report_in_place(tmp_path):
    null = char_device(tmp_path, "null", 3)
    result = run_cli([*SCALE, "--output", null])
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == "", result
    assert_still_the_device(null, 3)
    assert os.listdir(tmp_path) == ["null"]  # no temporary file left beside it


def test_a_full_device_is_exit_2_with_one_paragraph_and_stays_a_device(tmp_path):
    full = char_device(tmp_path, "full", 7)
    result = run_cli([*SCALE, "--output", full])
    assert result.exit_code == 2 and result.stdout == "", result
    assert result.stderr == (
        f"gradcheck: --output {full}: the report could not be written (No space left on device); nothing "
        "there was replaced. Give a path you can write to, or leave --output out to print the report.\n"
    )
    assert_still_the_device(full, 7)
    assert os.listdir(tmp_path) == ["full"]


def test_a_fifo_takes_the_report_in_place(tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()), daemon=True)
    reader.start()
    result = run_cli([*SCALE, "--output", fifo])
    reader.join(10)
    assert result.exit_code == 0, result
    assert '"target": "tests/data/hostile/in_call.py:Scale"' in received[0]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_socket_is_refused_before_any_check(tmp_path):
    path = tmp_path / "report.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    try:
        result = run_cli(["tests/data/hostile/in_call.py:Nope", "--input-shape", "4,5", "--output", path])
    finally:
        listener.close()
    assert result.exit_code == 2, result
    assert result.stderr == (
        f"gradcheck: --output {path} is a socket, not a file a report can be written to. Give a file "
        "name, e.g. --output gradcheck-report.txt.\n"
    )  # not the missing name's message: refused before the target was loaded
    assert stat.S_ISSOCK(os.stat(path).st_mode)


def test_a_path_that_cannot_be_written_is_exit_2_without_a_traceback():
    result = run_cli([*SCALE, "--output", "/proc/gradcheck-report.json"])
    assert result.exit_code == 2 and result.stdout == "", result
    assert result.stderr == (
        "gradcheck: --output /proc/gradcheck-report.json: the report could not be written (No such file or "
        "directory); nothing there was replaced. Give a path you can write to, or leave --output out to "
        "print the report.\n"
    )


def test_through_a_symbolic_link_the_file_it_points_to_is_replaced_and_the_link_stays(tmp_path):
    (tmp_path / "reports").mkdir()
    real = tmp_path / "reports" / "report.json"
    real.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    result = run_cli([*SCALE, "--output", link])
    assert result.exit_code == 0, result
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert '"target": "tests/data/hostile/in_call.py:Scale"' in real.read_text()


def test_a_source_file_the_target_imported_is_never_overwritten(tmp_path):
    """layers.py imports helpers.py from its own folder: only the worker knows, having imported it."""
    shutil.copytree(ROOT / "tests" / "data" / "hostile" / "a", tmp_path / "a")
    helpers = tmp_path / "a" / "helpers.py"
    before = helpers.read_bytes()
    args = ["a/layers.py:Project", "--input-shape", "4,5", "--no-numeric", "--no-reload"]
    result = run_cli([*args, "--output", "a/helpers.py"], cwd=tmp_path)
    assert result.exit_code == 2 and result.stdout == "", result
    assert result.stderr == (
        f"gradcheck: --output a/helpers.py is {os.path.realpath(helpers)}, a source file the checked code "
        "imported: the report would overwrite it, so it was not written. Give another file, e.g. --output "
        "gradcheck-report.txt.\n"
    )
    assert helpers.read_bytes() == before
    assert sorted(os.listdir(tmp_path / "a")) == ["helpers.py", "layers.py"]
    beside = run_cli([*args, "--output", "a/report.txt"], cwd=tmp_path)  # the control: a new file is written
    assert beside.exit_code == 0 and "OK a/layers.py:Project" in (tmp_path / "a" / "report.txt").read_text()
