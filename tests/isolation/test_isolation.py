"""The checked code cannot decide the verdict (issue 8): it runs in a worker the `gradcheck` command supervises.

Each hostile layer under tests/data/hostile/ ends, stalls, crashes or prints; the real command must
report "could not run" (exit 2) with a message naming how and where, keep stdout for the report,
and go on with the other targets.
"""

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

HOSTILE = ROOT / "tests" / "data" / "hostile"
H = "tests/data/hostile"
SCRIPT = Path(sys.executable).parent / "gradcheck"


def line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


EXITS = {
    "sys.exit at import": (
        "exit_at_import.py:Never",
        "sys.exit(0)",
        "The layer's module called sys.exit(0) at {where} while loading the target. An exit is never a pass",
    ),
    "os._exit at import": (
        "os_exit_at_import.py:Never",
        "os._exit(0)",
        "The layer's module called os._exit(0) at {where} while loading the target. An exit is never a pass",
    ),
    "sys.exit in call": (
        "in_call.py:SysExitInCall",
        "sys.exit(0)",
        "The layer's code called sys.exit(0) at {where} while building and calling the layer.",
    ),
    "sys.exit(3) in build": (
        "in_call.py:SysExit3InBuild",
        "sys.exit(3)",
        "The layer's code called sys.exit(3) at {where} while building and calling the layer.",
    ),
    "os._exit in call": (
        "in_call.py:OsExitInCall",
        "os._exit(0)",
        "The layer's code called os._exit(0) at {where} while building and calling the layer.",
    ),
    "KeyboardInterrupt in call": (
        "in_call.py:InterruptInCall",
        "raise KeyboardInterrupt",
        "The layer's code raised KeyboardInterrupt at {where} while building and calling the layer.",
    ),
    # The worker leads a process group of its own: the command's, and the test run's, are not hit.
    "killpg(0) in call": (
        "in_call.py:KillsItsGroup",
        "os.killpg(0",
        "The worker checking it was ended by SIGTERM while building and calling the layer.",
    ),
    "segfault in call": (
        "in_call.py:Segfault",
        "ctypes.string_at(0)",
        "The worker checking it crashed (SIGSEGV) while building and calling the layer.",
    ),
}


@pytest.fixture(scope="module")
def exit_runs(tmp_path_factory):
    """Each hostile target of EXITS checked once, asked for a JSON report in a file: an ending
    worker costs a fresh one (TensorFlow imported again), so the tests that read a run share it."""
    runs = {}

    def run(target):
        if target not in runs:
            output = tmp_path_factory.mktemp("exit") / "report.json"
            runs[target] = (run_cli([f"{H}/{target}", "--input-shape", "4,5", "--json", "--output", output]), output)
        return runs[target]

    return run


@pytest.mark.parametrize("target, statement, phrase", list(EXITS.values()), ids=list(EXITS))
def test_an_exit_or_crash_is_could_not_run_never_a_pass(target, statement, phrase, exit_runs):
    file = target.split(":")[0]
    where = f"{H}/{file}:{line_of(HOSTILE / file, statement)}"
    result, output = exit_runs(target)
    assert result.exit_code == 2, result
    assert result.stderr.startswith("gradcheck: " + phrase.format(where=where)), result
    assert result.stdout == "" and not output.exists(), result


def test_a_crash_shows_the_captured_python_stack(exit_runs):
    result, _ = exit_runs("in_call.py:Segfault")
    assert "----- output captured while checking tests/data/hostile/in_call.py:Segfault -----" in result.stderr
    assert "Fatal Python error: Segmentation fault" in result.stderr, result
    assert (
        f'File "{HOSTILE / "in_call.py"}", line {line_of(HOSTILE / "in_call.py", "string_at(0)")} in call'
        in result.stderr
    )


def test_what_the_layer_prints_never_reaches_stdout():
    result = run_cli([f"{H}/printing.py:Chatty", "--input-shape", "4,5", "--json"])
    assert result.exit_code == 0, result
    assert result.json()["variables"][0]["name"] == "scale"  # stdout is exactly one JSON document
    assert result.stderr == "", result


def test_debug_shows_what_the_layer_printed():
    result = run_cli([f"{H}/printing.py:Chatty", "--input-shape", "4,5", "--json", "--debug"])
    assert result.exit_code == 0, result
    json.loads(result.stdout)
    captured = result.stderr.split(
        "----- output captured while checking tests/data/hostile/printing.py:Chatty -----\n"
    )[1]
    lines = captured.splitlines()
    assert lines[:4] == [
        "printed at import",
        "to stderr at import",
        "os.write to fd 1 in build",
        "os.write to fd 2 in build",
    ], result
    assert "tf.print in call" in lines and lines[-1] == "-----", result


def test_debug_tells_the_peak_memory_of_each_target_s_worker():
    result = run_cli(["keras.layers:Dense", "--init", "units=3", "--input-shape", "4,5", "--quiet", "--debug"])
    assert result.exit_code == 0, result
    words = re.search(
        r"^gradcheck: keras.layers:Dense: peak memory of its worker ([\d,]+) MB resident"
        r"(?:, ([\d,]+) MB more than when the check started)?$",
        result.stderr,
        re.MULTILINE,
    )
    assert words, result
    peak = int(words.group(1).replace(",", ""))
    assert peak > 100, result  # TensorFlow alone is a few hundred MB
    if sys.platform.startswith("linux"):  # the start is read from /proc
        assert words.group(2) is not None and int(words.group(2).replace(",", "")) < peak, result
    quiet = run_cli(["keras.layers:Dense", "--init", "units=3", "--input-shape", "4,5", "--quiet"])
    assert "peak memory" not in quiet.stderr, quiet


def test_captured_output_is_shown_with_a_target_that_could_not_run():
    result = run_cli([f"{H}/printing.py:Chatty", "--input-shape", "4,5", "--init", "nonsense=1", "--json"])
    assert result.exit_code == 2 and result.stdout == "", result
    first, captured = result.stderr.split(
        "\n----- output captured while checking tests/data/hostile/printing.py:Chatty -----\n"
    )
    assert first.startswith(
        "gradcheck: Chatty(nonsense=1) raised ValueError: Unrecognized keyword arguments passed to Chatty"
    ), result
    assert captured == "printed at import\nto stderr at import\n-----\n", result


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Five targets, one of which ends its process, and two folders that each hold a helpers.py.
    Shared by the module's tests (none changes it): each run of it costs a fresh worker."""
    tmp_path = tmp_path_factory.mktemp("project")
    shutil.copytree(HOSTILE, tmp_path / "layers")
    entries = [
        ("layers/in_call.py:Scale", ""),
        ("layers/in_call.py:OsExitInCall", ""),
        ("layers/a/layers.py:Project", ""),
        ("layers/b/layers.py:Project", ""),
        ("layers/printing.py:Chatty", ""),
    ]
    (tmp_path / "pyproject.toml").write_text(
        "".join(
            f'[[tool.gradcheck.targets]]\ntarget = "{target}"\ninput-shape = ["4,5"]\n{extra}\n'
            for target, extra in entries
        )
    )
    return tmp_path


@pytest.fixture(scope="module")
def project_runs(project):
    """The project checked in a format with N jobs, each (format, N) once for the module."""
    runs = {}

    def run(output_format, jobs):
        if (output_format, jobs) not in runs:
            # No test here reads a finite-difference verdict or the reload: both are off.
            args = ["--format", output_format, "--jobs", str(jobs), "--no-numeric", "--no-reload"]
            runs[output_format, jobs] = run_cli(args, cwd=project)
        return runs[output_format, jobs]

    return run


def test_one_target_that_exits_does_not_end_the_run(project, project_runs):
    result = project_runs("json", 1)
    assert result.exit_code == 2, result
    targets = result.json()["targets"]
    assert [(t["target"], t["ok"]) for t in targets] == [
        ("layers/in_call.py:Scale", True),
        ("layers/in_call.py:OsExitInCall", False),
        ("layers/a/layers.py:Project", True),
        ("layers/b/layers.py:Project", True),
        ("layers/printing.py:Chatty", True),
    ]
    line = line_of(project / "layers" / "in_call.py", "os._exit(0)")
    assert targets[1]["error"].startswith(
        f"The layer's code called os._exit(0) at layers/in_call.py:{line} while building"
    )
    assert result.stderr.startswith("gradcheck: layers/in_call.py:OsExitInCall: The layer's code called os._exit(0)"), (
        result
    )
    # Same-named helper modules: each target got its own folder's helpers.py.
    assert [v["shape"] for v in targets[2]["variables"]] == [[5, 3]]  # a/helpers.py: WIDTH = 3
    assert [v["shape"] for v in targets[3]["variables"]] == [[5, 4]]  # b/helpers.py: WIDTH = 4


@pytest.mark.parametrize("output_format", ["json", "text"])
def test_two_jobs_give_the_same_output_as_one(project_runs, output_format):
    one, two = project_runs(output_format, 1), project_runs(output_format, 2)
    assert one.exit_code == two.exit_code == 2, two
    assert (two.stdout, two.stderr) == (one.stdout, one.stderr)
    assert "layers/b/layers.py:Project" in one.stdout


def test_jobs_must_be_a_count_or_auto():
    result = run_cli([f"{H}/in_call.py:Scale", "--input-shape", "4,5", "-j", "0"])
    assert result.exit_code == 2
    assert (
        "Invalid value for '--jobs' / '-j': must be a number of worker processes (1 or more) or auto, got '0'."
        in result.stderr
    )


def test_output_onto_the_targets_source_is_refused(tmp_path):
    layers = tmp_path / "in_call.py"
    shutil.copy(HOSTILE / "in_call.py", layers)
    before = layers.read_bytes()
    result = run_cli(["in_call.py:Scale", "--input-shape", "4,5", "--output", "./in_call.py"], cwd=tmp_path)
    assert result.exit_code == 2, result
    assert result.stderr == (
        "gradcheck: --output ./in_call.py is the source of in_call.py:Scale: this run reads it, and the "
        "report would overwrite it. Give another file, e.g. --output gradcheck-report.txt.\n"
    ), result
    assert layers.read_bytes() == before


def test_output_onto_pyproject_or_into_a_missing_folder_is_refused(project):
    before = (project / "pyproject.toml").read_text()
    result = run_cli(["--output", "pyproject.toml"], cwd=project)
    assert result.exit_code == 2, result
    assert (
        "gradcheck: --output pyproject.toml is ./pyproject.toml, which lists the targets: this run reads it"
        in result.stderr
    )
    assert (project / "pyproject.toml").read_text() == before
    missing = run_cli(["--output", "no/such/folder/report.txt"], cwd=project)
    assert missing.exit_code == 2
    assert (
        f"gradcheck: --output no/such/folder/report.txt: there is no folder {project}/no/such/folder." in missing.stderr
    )


def test_output_is_replaced_whole(tmp_path):
    report = tmp_path / "report.json"
    report.write_text("old")
    result = run_cli([f"{H}/in_call.py:Scale", "--input-shape", "4,5", "--json", "--output", report])
    assert result.exit_code == 0, result
    assert json.loads(report.read_text())["target"] == f"{H}/in_call.py:Scale"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_what_one_targets_module_does_to_the_interpreter_never_reaches_the_next(tmp_path):
    """Each target is checked in a fresh process: a module that makes numpy's isfinite call
    everything finite, and sets a variable in os.environ, changes nothing for the targets after it
    in the same run. (In one reused worker, the NaN gradient below passed and the width was 7.)"""
    (tmp_path / "layers").mkdir()
    shutil.copy(HOSTILE / "patches_globals.py", tmp_path / "layers")
    shutil.copy(ROOT / "sample_layers" / "gradients.py", tmp_path / "layers")
    shutil.copy(ROOT / "tests" / "data" / "environment_layer.py", tmp_path / "layers")
    (tmp_path / "pyproject.toml").write_text(
        '[[tool.gradcheck.targets]]\ntarget = "layers/patches_globals.py:Scale"\ninput-shape = ["4,5"]\n\n'
        '[[tool.gradcheck.targets]]\ntarget = "layers/gradients.py:SqrtOfZeroWeight"\ninput-shape = ["16,5"]\n\n'
        '[[tool.gradcheck.targets]]\ntarget = "layers/environment_layer.py:WidthFromEnvironment"\ninput-shape = ["4,5"]\n'
    )
    result = run_cli(["--json", "--no-numeric", "--no-reload"], cwd=tmp_path)
    assert result.exit_code == 1, result
    patcher, nan, width = result.json()["targets"]
    assert patcher["ok"] and patcher["findings"] == []
    line = next(
        n
        for n, text in enumerate((tmp_path / "layers" / "gradients.py").read_text().splitlines(), 1)
        if "tf.sqrt(self.gain)" in text
    )
    errors = [(f["code"], f["tensor"], f["location"]) for f in nan["findings"] if f["severity"] == "error"]
    assert errors == [("nonfinite-gradient", "gain", f"layers/gradients.py:{line}")], nan["findings"]
    assert [v["shape"] for v in width["variables"]] == [[5, 1]]  # GRADCHECK_TEST_WIDTH unset here
