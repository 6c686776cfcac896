"""Shared helpers: run the real CLI in-process and read the expectations written in sample layers."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from report_invariants import broken_invariants

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# A daemon the developer started for this checkout (gradcheck --daemon) would fork the workers of
# the tests' runs: they look at their own fork servers. The daemon's tests ask for one explicitly.
os.environ["GRADCHECK_DAEMON"] = "off"
# JAX workers keep XLA's compiled programs on disk (backends/jax/runtime.py); the suite's go to a
# folder of its own, not the user's cache, and later runs of the suite reuse them.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "gradcheck-tests-jax-cache"))

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_layers"
# `# expect: CODE TENSOR` (at this line), `# expect-anywhere: ...` (any line); `expect[jax]:` for
# one backend only, in a sample checked on several.
_EXPECT = re.compile(r"expect(-anywhere)?(?:\[(\w+)\])?:\s*([a-z0-9-]+)\s+(\S+)")


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str
    args: list

    def json(self) -> dict:
        return json.loads(self.stdout)

    def __str__(self):  # shown by pytest when an assertion about the result fails
        return f"gradcheck {shlex.join(self.args)}\nexit {self.exit_code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_cli(args, cwd: Path = ROOT) -> Result:
    """Run `gradcheck ARGS` in-process (click's runner), from `cwd`, as a user would."""
    from gradcheck.cli import main

    previous = os.getcwd()
    os.chdir(cwd)
    try:
        outcome = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(previous)
    result = Result(outcome.exit_code, outcome.stdout, outcome.stderr, [str(a) for a in args])
    _walk(result)
    return result


def _walk(result: Result) -> None:
    """Every JSON report a test's run prints must hold what every report holds (report_invariants):
    so each layer the suite checks is walked, with no run of its own."""
    if not result.stdout.lstrip().startswith("{"):
        return  # text, Markdown, SARIF to a file: the JSON runs of the same layers are walked
    try:
        document = json.loads(result.stdout)
    except ValueError:
        return  # not a report (an error paragraph, a --help): other assertions judge it
    broken = broken_invariants(document)
    assert not broken, f"the report breaks what every report holds: {broken}\n{result}"


_SHARED: dict = {}


_FOLDER: list = []  # the folder every xdist worker of this test run sees; empty without xdist


@pytest.fixture(scope="session", autouse=True)
def _shared_runs_folder(tmp_path_factory):
    """Under xdist each worker's temporary base is a folder of the run's own (pytest removes old
    ones): the runs shared between workers are kept beside them."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.getbasetemp().parent / "shared-runs"
        folder.mkdir(exist_ok=True)
        _FOLDER.append(folder)
    yield
    _FOLDER.clear()


def run_cli_shared(args, cwd: Path = ROOT) -> Result:
    """run_cli, computed once per test run for the same arguments: tests that read different facts
    of one deterministic run (a sample layer's findings, its table rows) share it, whichever xdist
    worker runs them (the first to need it makes it under a file lock, the others read it). Read
    it, never change it."""
    key = (tuple(str(a) for a in args), str(cwd))
    if key in _SHARED:
        return _SHARED[key]
    folder = _FOLDER[0] if _FOLDER else None
    if folder is None:
        _SHARED[key] = run_cli(args, cwd)
        return _SHARED[key]
    import fcntl
    import hashlib

    stem = folder / hashlib.sha256(json.dumps(key).encode()).hexdigest()
    with open(stem.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held while one worker makes the run
        done = stem.with_suffix(".json")
        if done.exists():
            result = Result(**json.loads(done.read_text()))
        else:
            result = run_cli(args, cwd)
            done.write_text(json.dumps(result.__dict__))
    _SHARED[key] = result
    return result


def line_in(source: str, text: str) -> int:
    """The line number of `source` (a file's text) holding `text`, which must occur on exactly one line."""
    lines = [n for n, line in enumerate(source.splitlines(), 1) if text in line]
    assert len(lines) == 1, (text, lines)
    return lines[0]


def line_of(text: str, file: str) -> int:
    """The line of `file` (relative to the repository root) that holds `text`: tests name the code
    they mean rather than a line number that moves when the file is edited."""
    return line_in((ROOT / file).read_text(), text)


@dataclass
class Case:
    """One sample layer class and the findings its comments say it must produce."""

    file: str  # relative to the repository root
    name: str
    args: list
    expected: set  # (code, tensor, line or None, backend or None: every backend the case runs on)

    @property
    def id(self):
        return f"{Path(self.file).stem}:{self.name}"

    @property
    def other_backends(self) -> bool:
        """Checked with --backend (on JAX, PyTorch, or several): tests/checks/test_backends.py runs it."""
        return "--backend" in self.args

    def expected_on(self, backend: str) -> set:
        """(code, tensor, line) the case expects on `backend`."""
        return {(code, tensor, line) for code, tensor, line, only in self.expected if only in (None, backend)}


def sample_cases() -> list[Case]:
    cases = []
    for path in sorted(SAMPLES.glob("*.py")):
        lines = path.read_text().splitlines()
        classes = [node for node in ast.parse("\n".join(lines)).body if isinstance(node, ast.ClassDef)]
        start = 1  # expectations above a layer class (a helper class, a module global) belong to it
        for node in classes:
            header = lines[node.lineno - 1]
            if "# args:" not in header:
                continue
            expected = set()
            for number in range(start, node.end_lineno + 1):
                for anywhere, only, code, tensor in _EXPECT.findall(lines[number - 1]):
                    expected.add((code, None if tensor == "-" else tensor, None if anywhere else number, only or None))
            start = node.end_lineno + 1
            args = shlex.split(re.split(r"expect(?:-anywhere)?:", header.split("# args:", 1)[1])[0])
            relative = path.relative_to(ROOT).as_posix()
            cases.append(Case(relative, node.name, args, expected))
    return cases


def observed(case: Case, document: dict) -> set:
    """The findings to compare with a case (one report's document): every error and warning, and
    infos the case names, as (code, tensor, line)."""
    expected = case.expected_on(document.get("backend", "tensorflow"))
    expected_codes = {code for code, _, _ in expected}
    found = set()
    for item in document["findings"]:
        if item["severity"] == "info" and item["code"] not in expected_codes:
            continue
        line = None
        if item["location"] and item["location"].startswith(case.file + ":"):
            line = int(item["location"].rsplit(":", 1)[1])
        anywhere = (item["code"], item["tensor"], None) in expected
        found.add((item["code"], item["tensor"], None if anywhere else (line if line else item["location"])))
    return found


def check_sample(case: Case) -> None:
    """Run a sample case (shared) and assert its findings on every backend it was checked on."""
    from gradcheck.codes import CODES

    result = run_cli_shared([f"{case.file}:{case.name}", *case.args, "--json"])
    assert result.exit_code in (0, 1), result
    document = result.json()
    # One report, or one per backend (a sample checked with --backend all).
    reports = document["targets"] if "targets" in document else [document]
    for report in reports:
        assert observed(case, report) == case.expected_on(report["backend"]), (report["backend"], result)
    has_error = any(CODES[code].severity == "error" for code, *_ in case.expected)
    assert result.exit_code == (1 if has_error else 0), result
    assert document["ok"] is (not has_error)


@pytest.fixture
def cli():
    return run_cli


def char_device(folder, name: str, minor: int) -> str:
    """A character device node 1,`minor` made in `folder` (1,3 the null device, 1,7 the full one,
    whose every write fails with ENOSPC): tests never touch the real /dev/null. Needs root and a
    file system that allows devices; the test is skipped without them."""
    import stat

    path = os.path.join(folder, name)
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
        os.close(os.open(path, os.O_WRONLY))
    except PermissionError:
        pytest.skip("making and opening a device node needs root, on a file system that allows devices")
    return path


# --- the order test files are handed to xdist workers --------------------------------------------
# `--dist loadfile` gives each worker whole files, the next one in collection order as it runs low
# (pyproject's addopts turn off xdist's own reordering, which puts the files with the most tests
# first). A file costing ten seconds handed out last leaves the other CPU idle for up to ten, so
# the files that cost most (fresh processes that import TensorFlow, many checks) go first and the
# many small ones fill in at the end: both workers end within about a second of each other.
_COSTLIEST_FIRST = (  # by CPU-seconds, measured with GRADCHECK_CPU_REPORT (tests/README.md)
    "test_backends.py",
    "test_isolation_process.py",
    "test_daemon.py",  # mostly waiting on processes (the daemon's import, signals): early, beside the others
    "test_daemon_process.py",
    "test_samples.py",
    "test_peer_layers.py",
    "test_pyproject_runs.py",
    "test_keras_builtins.py",
    "test_causes_and_severity.py",
    "test_accuracy.py",
    "test_gate_project.py",
    "test_api.py",
    "test_forkserver.py",
    "test_isolation.py",
    "test_trust.py",
    "test_big_layers.py",
    "test_reload.py",
    "test_second_order.py",
    "test_fast_lane.py",
    "test_numeric.py",
    "test_temporary_files.py",
    "test_baseline.py",
    "test_gradients.py",
    "test_inventory.py",
)


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = Path(str(item.path)).name
        return _COSTLIEST_FIRST.index(name) if name in _COSTLIEST_FIRST else len(_COSTLIEST_FIRST)

    items.sort(key=rank)  # stable: tests keep their order within a file, the other files theirs


def pytest_configure(config):
    """hypothesis ships a pytest plugin, so pytest marks its whole package (some seventy modules)
    for assertion rewriting; with PYTHONDONTWRITEBYTECODE set nothing caches the result, and each
    process of a run (both xdist workers when they collect test_properties.py, and the controller,
    whose summary imports it) paid 0.6-0.8 s for asserts inside hypothesis that no test reads.
    Unmarked, it is imported as it is installed. (A private set of pytest's: left alone if gone.)"""
    marked = getattr(getattr(config.pluginmanager, "rewrite_hook", None), "_must_rewrite", None)
    if isinstance(marked, set):
        marked.discard("hypothesis")


_TENSORFLOW_FROZEN: list = []


def pytest_runtest_teardown(item, nextitem):
    """Once a test has imported TensorFlow into this process (an in-process check), its ~270,000
    objects are put out of the garbage collector's reach: they live as long as the process, and
    each full collection the later tests trigger would walk them all again (the two xdist workers'
    collections took 2.5 CPU-seconds of a run, 1.6 with this; gc.callbacks). A gradcheck worker
    process does the same (worker.prepare)."""
    if not _TENSORFLOW_FROZEN and "tensorflow" in sys.modules:
        import gc

        gc.freeze()
        _TENSORFLOW_FROZEN.append(True)


def pytest_unconfigure(config):
    """Out of the garbage collector's reach with everything made so far: a process with TensorFlow
    loaded spends about a second of its exit in the interpreter's last collections, walking
    TensorFlow's objects (measured: 1.0 s to end, 0.12 s frozen), and each xdist worker is one."""
    import gc

    gc.freeze()


# --- CPU accounting (opt-in): GRADCHECK_CPU_REPORT=FILE appends "file<TAB>cpu-seconds<TAB>test" per test -
# The wall time of `pytest -n 2` depends on the machine's load; the CPU a test costs, its worker
# processes included, does not much. Each test's cost is this process's CPU plus its descendants'
# (workers that ended are counted through RUSAGE_CHILDREN once reaped, live ones through /proc).
_CPU_REPORT = os.environ.get("GRADCHECK_CPU_REPORT")


def process_stats() -> dict[int, list[str]]:
    """Every running process's /proc/PID/stat fields after the command name: [state, ppid, ...]."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # it ended while the table was read
    return stats


def _descendant_cpu(root: int) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    stats = process_stats()
    parents = {pid: int(fields[1]) for pid, fields in stats.items()}
    # utime + stime, and cutime + cstime: a fork server's workers that ended count through it.
    times = {pid: sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks for pid, fields in stats.items()}
    total = 0.0
    for pid in times:
        ancestor = parents.get(pid)
        while ancestor and ancestor != root:
            ancestor = parents.get(ancestor)
        if ancestor == root:
            total += times[pid]
    return total


def _cpu() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime + _descendant_cpu(os.getpid())


if _CPU_REPORT:

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        before = _cpu()
        yield
        with open(_CPU_REPORT, "a") as stream:
            stream.write(f"{item.nodeid.split('::')[0]}\t{_cpu() - before:.2f}\t{item.nodeid}\n")
