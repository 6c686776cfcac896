"""Benchmark, run by hand (not by CI): what a fresh worker costs, when targets end their workers.

    python bench/worker_start.py [--repeat 1] [--before CHECKOUT]

A worker that ends abnormally (os._exit, a crash, --timeout) is replaced by a fresh one for the
next target. On Linux workers are forked from a fork server that imported TensorFlow once
(gradcheck/forkserver.py); without it every fresh worker imports TensorFlow again. --before
runs each row also with the gradcheck package of another checkout (a git worktree of the code
before the fork server), alternating with this one.

Rows (a fresh `gradcheck` command each, in a temporary project of sample targets, 4x5 inputs,
--no-numeric --no-reload so the start-up is what is measured):
- one correct target, and ten (what each target beyond the first costs a warm worker);
- eight targets, three of which end their worker (os._exit in call, a segfault, os._exit at
  import), with -j 1 and with -j 2.
Prints wall time, CPU time (the command and every process under it) and peak RSS of the largest.
Then the memory of the whole run: the peak of the summed PSS (each shared page counted once,
split among the processes sharing it) of the command and every process under it, sampled while
a worker holds a hanging target (Linux: /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from realistic import ROOT, run_timed

HOSTILE = ROOT / "tests" / "data" / "hostile"
TARGETS = [
    "in_call.py:Scale",
    "in_call.py:OsExitInCall",
    "in_call.py:Scale",
    "in_call.py:Segfault",
    "in_call.py:Scale",
    "os_exit_at_import.py:Never",
    "in_call.py:Scale",
    "in_call.py:Scale",
]


def project(folder: Path, targets: list[str]) -> Path:
    folder.mkdir()
    for name in ("in_call.py", "os_exit_at_import.py"):
        shutil.copy(HOSTILE / name, folder / name)
    (folder / "pyproject.toml").write_text(
        "".join(f'[[tool.gradcheck.targets]]\ntarget = "{t}"\ninput-shape = ["4,5"]\n\n' for t in targets)
    )
    return folder


def _process_tree(root: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    found, level = [root], [root]
    while level:
        level = [child for child, parent in parents.items() if parent in level]
        found += level
    return found


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_pss(gradcheck: str, checkout: str | None, seconds: float = 10.0) -> float:
    """The peak summed PSS (MB) of the command's processes while its worker holds a hanging layer."""
    environment = dict(os.environ)
    if checkout is not None:
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [checkout, environment.get("PYTHONPATH")]))
    command = [gradcheck, "tests/data/bad_layers.py:Hangs", "--input-shape", "4,5", "--timeout", "60"]
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak, deadline = 0.0, time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            time.sleep(0.25)
            peak = max(peak, sum(_pss_mb(pid) for pid in _process_tree(process.pid)))
    finally:
        process.kill()
        process.wait()
    return peak


def outcome(stdout: str) -> str:
    try:
        document = json.loads(stdout)
    except json.JSONDecodeError:
        return "no report"
    reports = document.get("targets", [document])
    return f"{sum(1 for r in reports if r.get('ok'))} ok, {sum(1 for r in reports if 'error' in r)} could not run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the best is shown")
    parser.add_argument("--before", metavar="CHECKOUT", help="also run each row with another checkout's gradcheck")
    args = parser.parse_args()
    gradcheck = str(Path(sys.executable).with_name("gradcheck"))
    versions = [("now", None)] + ([("before", str(Path(args.before).resolve()))] if args.before else [])
    print(f"# {os.cpu_count()} CPUs · load average {os.getloadavg()[0]:.2f} at the start")
    print()
    print("| run | code | wall time | CPU time | peak memory (RSS) | targets |")
    print("|---|---|---:|---:|---:|---|")
    with tempfile.TemporaryDirectory() as folder:
        one = project(Path(folder) / "one", TARGETS[:1])
        ten = project(Path(folder) / "ten", TARGETS[:1] * 10)
        eight = project(Path(folder) / "eight", TARGETS)
        rows = [
            ("1 target", one, []),
            ("10 correct targets, -j 1", ten, ["-j", "1"]),
            ("8 targets, 3 end their worker, -j 1", eight, ["-j", "1"]),
            ("8 targets, 3 end their worker, -j 2", eight, ["-j", "2"]),
        ]
        for label, cwd, extra in rows:
            for name, checkout in versions:
                command = [gradcheck, *extra, "--json", "--no-numeric", "--no-reload"]
                wall, cpu, peak, stdout = run_timed(command, args.repeat, checkout, cwd=cwd)
                print(f"| {label} | {name} | {wall:.2f} s | {cpu:.2f} s | {peak:.0f} MB | {outcome(stdout)} |", flush=True)
    if Path("/proc/self/smaps_rollup").exists():
        print()
        print("| memory of the whole run, a worker holding a hanging layer | code | peak summed PSS |")
        print("|---|---|---:|")
        for name, checkout in versions:
            print(f"| 1 target (`Hangs`), {10:g} s sampled | {name} | {peak_pss(gradcheck, checkout):.0f} MB |", flush=True)
    print()
    print(f"# load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
