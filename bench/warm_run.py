"""Benchmark, run by hand (not by CI): a run through the daemon (`gradcheck --daemon`) against a cold
run and against TensorFlow's import, the floor of every cold run, side by side in one run.

    python bench/warm_run.py [--repeat 5] [TARGET ARGS ...]

Default target: the README's first run, `sample_layers/classic.py:DenseWithActivation --init
units=10 --input-shape 100,5`, with --json. The script starts a daemon for this checkout in a
private runtime folder of its own (so a daemon of yours is neither used nor touched), waits for
its first run, then in each round runs, a fresh process each, in turn:
- the floor: `python -c "import tensorflow, keras"`;
- a cold run: the command with GRADCHECK_DAEMON=off (it starts its own fork server);
- a warm run: the same command, whose workers the daemon forks.
Prints the best and median wall time of each, CPU time (the command and every process under it
that ended; for the warm run, plus what the daemon's processes spent meanwhile: its worker), the
peak RSS of the command's largest process, whether each warm report was the cold one byte for
byte, the daemon's resident memory at rest (the daemon and its fork server), and the machine's
load average at the start and the end. The daemon is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gradcheck.isolation.descendants import descendants

ROOT = Path(__file__).resolve().parent.parent
README = ["sample_layers/classic.py:DenseWithActivation", "--init", "units=10", "--input-shape", "100,5", "--json"]
SCRIPT = Path(sys.executable).parent / "gradcheck"
TICKS = os.sysconf("SC_CLK_TCK")


def timed(command: list[str], environment: dict) -> tuple[float, float, float, str]:
    """(wall s, CPU s of it and its reaped descendants, peak RSS MB of the largest, stdout)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    stdout = process.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        sys.exit(f"{' '.join(command)} exited {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, stdout.decode()


def tree(root: int) -> list[int]:
    """`root` and every running process under it (the supervisor's own walk of /proc)."""
    return [root, *descendants(root)]


def tree_cpu(root: int) -> float:
    """CPU seconds of `root` and every live process under it, their reaped children included."""
    total = 0.0
    for pid in tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS
    return total


def tree_rss(root: int) -> float:
    total = 0
    for pid in tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def workers_done(daemon: int) -> bool:
    servers = [pid for pid in tree(daemon) if pid != daemon]
    return all(len(tree(server)) == 1 for server in servers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("target", nargs="*", help="TARGET and options (default: the README's first run, --json)")
    arguments = parser.parse_args()
    target = arguments.target or README
    load_start = os.getloadavg()
    runtime = tempfile.mkdtemp(prefix="gc-bench-")
    os.chmod(runtime, 0o700)
    base = {**os.environ, "XDG_RUNTIME_DIR": runtime, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cold_env = {**base, "GRADCHECK_DAEMON": "off"}
    warm_env = {k: v for k, v in base.items() if k != "GRADCHECK_DAEMON"}
    started = subprocess.run([str(SCRIPT), "--daemon"], cwd=ROOT, env=warm_env, capture_output=True, text=True)
    print(started.stdout.strip() or started.stderr.strip())
    daemon = int(re.search(r"\(pid (\d+)\)", started.stdout).group(1))
    try:
        timed([str(SCRIPT), *target], warm_env)  # the first waits for the daemon's import
        rows: dict[str, list[tuple[float, float, float]]] = {"floor": [], "cold": [], "warm": []}
        identical = []
        for _ in range(arguments.repeat):
            rows["floor"].append(timed([sys.executable, "-c", "import tensorflow, keras"], base)[:3])
            wall, cpu, rss, cold = timed([str(SCRIPT), *target], cold_env)
            rows["cold"].append((wall, cpu, rss))
            while not workers_done(daemon):
                time.sleep(0.01)
            before = tree_cpu(daemon)
            wall, cpu, rss, warm = timed([str(SCRIPT), *target], warm_env)
            while not workers_done(daemon):  # the worker ends just after its result: counted once reaped
                time.sleep(0.01)
            rows["warm"].append((wall, cpu + tree_cpu(daemon) - before, rss))
            identical.append(warm == cold)
        resting = tree_rss(daemon)
    finally:
        subprocess.run([str(SCRIPT), "--daemon", "stop"], cwd=ROOT, env=warm_env, capture_output=True)
        shutil.rmtree(runtime, ignore_errors=True)
    floor = statistics.median(wall for wall, _, _ in rows["floor"])
    print(f"\n`gradcheck {' '.join(target)}`, {arguments.repeat} rounds, best / median")
    print(f"{'run':<8} {'wall':>14} {'over the floor':>15} {'CPU':>14} {'peak RSS':>9}")
    for name, runs in rows.items():
        walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
        over = f"{statistics.median(walls) - floor:+.2f} s" if name != "floor" else ""
        print(
            f"{name:<8} {min(walls):6.2f}/{statistics.median(walls):.2f} s {over:>15} "
            f"{min(cpus):6.2f}/{statistics.median(cpus):.2f} s {max(r[2] for r in runs):6.0f} MB"
        )
    print(f"warm report byte-identical to the cold one: {sum(identical)} of {len(identical)}")
    print(f"the daemon at rest (daemon and fork server): {resting:.0f} MB resident")
    print(f"load average: {load_start[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
