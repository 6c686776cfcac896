"""The comparison itself, in the command: each backend's side (side.py) read back, outputs and
gradients compared between backends, and the findings put on the report of the backend at fault.

Tolerance. On the same float64 weights, inputs and draws, correct layers agree between backends to
1e-9-1e-16 (exact gelu differs by 1e-9 between backends: measured with Keras 3.15); frameworks
keep float32 islands inside some float64 ops (JAX's attention softmax, TensorFlow's image
transforms: 1e-7 of the value's size). A difference beyond RTOL = 1e-5 of the larger value is
therefore not rounding; the wrong gradients found so far differ by 8-99 %. A gradient that is
mathematically zero (attention's key bias) is rounding noise on every backend, and a float32 island
leaves noise of about float32's rounding of the largest value of the pass on it (1.4e-7 of 5.6 for
MultiHeadAttention's key bias on JAX): a difference within FLOOR = 1e-6 of the largest gradient (or
output) of the pass is not one either. A side that had to run in float32 (no float64 copy of the
layer on that backend) is compared within RTOL_FLOAT32.

At fault. When backends disagree on a tensor, the one apart from the others is at fault; between
two, or when the others also differ, the one whose gradient also disagrees with its own finite
differences (the gradient-mismatch of its report) is. The op where they part is named from the
call streams when they align: the first call whose output differs, or, outputs agreeing, the first
whose own gradient does.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from .. import codes
from ..checks.preprocessing import restated
from ..errors import sentence
from ..report import FRAMEWORKS, Report, TargetFailure, finding, sort_findings

RTOL = 1e-5
RTOL_FLOAT32 = 1e-3
FLOOR = 1e-6


@dataclasses.dataclass
class Side:
    backend: str
    meta: dict
    arrays: dict

    @property
    def ran(self) -> bool:
        return self.meta.get("status") == "ok"


def compare_backends(results: list, jobs: list) -> list:
    """Every group of jobs a comparison was asked for (one target on several backends, sharing a
    `compare_folder`) compared; the other results as they are."""
    groups: dict[str, list[int]] = {}
    for index, (_, options) in enumerate(jobs):
        folder = getattr(options, "compare_folder", None)
        if folder:
            groups.setdefault(folder, []).append(index)
    results = list(results)
    for folder, indexes in groups.items():
        backends = [jobs[i][1].backends[0] for i in indexes]
        for index, compared in zip(indexes, compare_group([results[i] for i in indexes], backends, folder)):
            results[index] = compared
    return results


def read_side(folder: str, backend: str) -> Side | None:
    try:
        with open(os.path.join(folder, f"{backend}.json")) as stream:
            meta = json.load(stream)
        with np.load(os.path.join(folder, f"{backend}.npz")) as stored:
            arrays = {key: stored[key] for key in stored.files}
    except (OSError, ValueError):
        return None
    return Side(backend, meta, arrays)


def compare_group(results: list, backends: list[str], folder: str) -> list:
    """`results` (one per backend, in `backends`' order: Reports or TargetFailures) with the
    comparison's findings added and each Report's `cross_backend` set."""
    sides = {b: read_side(folder, b) for b, r in zip(backends, results) if isinstance(r, Report)}
    added: dict[str, list] = {b: [] for b in backends}
    ran = [b for b in backends if (side := sides.get(b)) is not None and side.ran]
    results = _unsupported(results, backends, sides, ran, added)
    modes = _common_modes(sides, ran)
    if len(ran) >= 2:
        for mode in modes:
            _compare_mode(mode, ran, sides, results, backends, added)
    return [_finished(r, b, backends, sides, modes, added[b]) for r, b in zip(results, backends)]


def _name(backend: str) -> str:
    return FRAMEWORKS.get(backend, backend)


def _unsupported(results, backends, sides, ran, added) -> list:
    """A backend where the layer raises while another runs it: backend-unsupported on that backend."""
    if not ran:
        return results
    names = [_name(b) for b in ran]
    others = " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]
    updated = list(results)
    for index, (result, backend) in enumerate(zip(results, backends)):
        side = sides.get(backend)
        if isinstance(result, TargetFailure) and result.layer_raised_at is not None:
            where = result.layer_raised_at or None
            reason = result.message.split(" Fix the layer, or check")[0]
            message = (
                f"The layer runs on {others} but not on {_name(backend)}: {sentence(reason)} A layer meant to run on "
                "every backend must use keras.ops (or each backend's own op) there."
            )
            updated[index] = Report(
                target=result.target, backend=backend, training_modes=("n/a",), versions=_installed(backend)
            )
            added[backend].append(finding(codes.BACKEND_UNSUPPORTED, None, message, where))
        elif side is not None and not side.ran and backend not in ran:
            where = side.meta.get("where")
            message = (
                f"The layer runs on {others} but raises on {_name(backend)}{' at ' + where if where else ''} "
                f"while {side.meta.get('doing', 'differentiating it')} ({side.meta.get('error')}), so a model "
                f"holding it cannot be trained there. A layer meant to run on every backend must use keras.ops "
                "(or each backend's own op) there."
            )
            added[backend].append(finding(codes.BACKEND_UNSUPPORTED, None, message, where))
    return updated


def _installed(backend: str) -> dict:
    """The versions a report checked on `backend` would carry, read from the installed packages
    (the command imports no framework)."""
    from importlib import metadata

    versions = {}
    for key, package in ((backend, {"torch": "torch", "jax": "jax"}.get(backend, "tensorflow")), ("keras", "keras")):
        try:
            versions[key] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _common_modes(sides, ran) -> list[str]:
    modes = None
    for backend in ran:
        mine = sides[backend].meta.get("modes", [])
        modes = list(mine) if modes is None else [m for m in modes if m in mine]
    return modes or []


def _keys(sides, ran, mode: str, kind: str) -> list[str]:
    found: list[str] = []
    for backend in ran:
        for key in sides[backend].arrays:
            if key.startswith(f"{mode}|{kind}|") and key not in found:
                found.append(key)
    return found


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    """The largest difference over the larger of the two values' largest magnitudes."""
    if a.shape != b.shape:
        return float("inf")
    if not a.size:
        return 0.0
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-300)
    return float(np.max(np.abs(a - b))) / scale


def _apart(a: np.ndarray, b: np.ndarray, rtol: float, floor: float) -> bool:
    """Do `a` and `b` differ beyond `rtol` of their size and beyond the absolute `floor`?"""
    if a.shape != b.shape:
        return True
    if not a.size:
        return False
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    return float(np.max(np.abs(a - b))) > max(rtol * scale, floor)


def _tolerance(sides, one: str, other: str) -> float:
    wide = all(sides[b].meta.get("dtype") == "float64" for b in (one, other))
    return RTOL if wide else RTOL_FLOAT32


def _groups(values: dict, sides, floor: float) -> list[list[str]]:
    """Backends that agree with each other, in groups (the first member of each is compared with)."""
    groups: list[list[str]] = []
    for backend, value in values.items():
        for group in groups:
            lead = group[0]
            if not _apart(values[lead], value, _tolerance(sides, lead, backend), floor):
                group.append(backend)
                break
        else:
            groups.append([backend])
    return groups


def _compare_mode(mode, ran, sides, results, backends, added) -> None:
    for kind in ("output", "grad"):
        keyed = {k: {b: sides[b].arrays[k] for b in ran if k in sides[b].arrays} for k in _keys(sides, ran, mode, kind)}
        largest = max([float(np.max(np.abs(v))) for by in keyed.values() for v in by.values() if v.size] or [0.0])
        for key, values in keyed.items():
            _judge(mode, key, values, FLOOR * largest, sides, results, backends, added, output=kind == "output")


def _judge(mode, key, values, floor, sides, results, backends, added, output: bool) -> None:
    if len(values) < 2:
        return
    groups = _groups(values, sides, floor)
    if len(groups) == 1:
        return
    name = _tensor_name(key, results, backends)
    report_of = {b: r for b, r in zip(backends, results) if isinstance(r, Report)}
    wrong_fd = [b for b in values if not output and _fd_mismatch(report_of.get(b), name)]
    majority = max(groups, key=len)
    if sum(len(g) == len(majority) for g in groups) > 1:  # no majority: finite differences decide
        apart = [b for b in values if b in wrong_fd] or [b for b in values if b != next(iter(values))]
    else:
        apart = [b for b in values if b not in majority]
    for backend in apart:
        agreeing = [b for b in values if b not in apart] or [b for b in values if b != backend]
        reference = agreeing[0]
        size = _difference(values[backend], values[reference])
        largest = float(np.max(np.abs(values[backend] - values[reference])))
        where, located = _located(mode, sides, backend, reference, output, name, report_of.get(backend))
        message = _message(name, output, backend, agreeing, size, largest, mode, sides, wrong_fd, located)
        made = finding(codes.BACKEND_MISMATCH, name, message, where)
        preprocessing = sides[backend].meta.get("preprocessing")
        if preprocessing and not output and name in sides[backend].meta.get("inputs", ()):
            # A preprocessing layer's input gradient harms no training: said, as info (checks/preprocessing.py).
            made = restated(made, *preprocessing)
        added[backend].append(made)


def _tensor_name(key: str, results, backends) -> str:
    """ "true|grad|proj.kernel" -> "proj.kernel"; an output's key holds its name ("output[1]")."""
    return key.split("|", 2)[2]


def _fd_mismatch(report, name: str) -> bool:
    if report is None:
        return False
    rows = [*report.variables, *report.inputs]
    return any(row.name == name and row.numeric_verdict == "mismatch" for row in rows)


def _modes_text(mode: str, sides, backends) -> str:
    if mode == "n/a":
        return ""
    draws = " with the same random draws" if mode == "true" else ""
    return f", training={mode.capitalize()}{draws}"


def _message(name, output, backend, agreeing, size, largest, mode, sides, wrong_fd, located) -> str:
    others = " and ".join(f"{_name(b)}'s" for b in agreeing)
    what = f"`{name}`" if output else f"The gradient of `{name}`"
    narrow = [b for b in (backend, *agreeing) if sides[b].meta.get("dtype") != "float64"]
    precision = (
        f" ({' and '.join(_name(b) for b in narrow)} in {sides[narrow[0]].meta.get('dtype')}: no float64 copy "
        f"of the layer runs there; compared within {RTOL_FLOAT32:g})"
        if narrow
        else ""
    )
    text = (
        f"{what} on {_name(backend)} differs from {others} by {size:.1e} of its size (largest difference "
        f"{largest:.2g}), with the same float64 weights and inputs{_modes_text(mode, sides, agreeing)}{precision}."
    )
    if not output and wrong_fd:
        right = [b for b in agreeing if b not in wrong_fd]
        if backend in wrong_fd and right:
            fine = " and ".join(f"{_name(b)}'s" for b in right)
            text += (
                f" {_name(backend)}'s gradient also disagrees with its own finite differences, while {fine} "
                f"agree{'s' if len(right) == 1 else ''} with theirs: {_name(backend)}'s gradient is the wrong one."
            )
    elif not output:
        text += " Each backend's gradient agrees with its own finite differences, so which one is right is not known."
    if located:
        text += f" {located}"
    fix = (
        "Train on a backend whose gradient agrees with its finite differences, or give the computation a "
        "gradient of your own with keras.ops.custom_gradient."
        if not output
        else "Check the op on that backend, or write the computation with ops every backend computes alike."
    )
    return f"{text} {fix}"


def _located(mode, sides, backend, reference, output, name, report) -> tuple[str | None, str]:
    """(location, sentence) of the first call where the two backends' streams part."""
    ours, theirs = (
        sides[backend].meta.get("stream", {}).get(mode, []),
        sides[reference].meta.get("stream", {}).get(mode, []),
    )
    fallback = _created_at(report, name)
    kinds = ("output",) if output else ("output", "gradient")
    for kind in kinds:
        for index, (mine, other) in enumerate(zip(ours, theirs)):
            if mine[0] != other[0]:
                return fallback, ""
            a = sides[backend].arrays.get(f"{mode}|call|{index}|{kind}")
            b = sides[reference].arrays.get(f"{mode}|call|{index}|{kind}")
            if a is None or b is None:
                continue
            if _apart(a, b, _tolerance(sides, backend, reference), FLOOR * float(np.max(np.abs(b), initial=0.0))):
                at = f" at {mine[1]}" if mine[1] else ""
                if kind == "output":
                    return mine[1] or fallback, f"The outputs part at `{mine[0]}`{at}."
                return mine[
                    1
                ] or fallback, f"They part at the gradient of `{mine[0]}`{at}: its outputs agree, its gradients do not."
    return fallback, ""


def _created_at(report, name: str) -> str | None:
    if report is None:
        return None
    return next((row.created_at for row in report.variables if row.name == name), None)


def _finished(result, backend, backends, sides, modes, added) -> object:
    if not isinstance(result, Report):
        return result
    others = [b for b in backends if b != backend]
    side = sides.get(backend)
    if side is None or not side.ran:
        status = "unsupported" if added else f"skipped: {side.meta.get('error') if side else 'no comparison was made'}"
    elif not modes:
        status = "skipped: no training mode could be compared on every backend"
    else:
        status = "mismatch" if added else "ok"
    skipped = side.meta.get("skipped", {}) if side is not None else {}
    summary = {"backends": others, "modes": modes, "status": status, "left_out": skipped}
    findings = tuple(dataclasses.replace(f, backend=backend) for f in added)
    return dataclasses.replace(result, findings=sort_findings((*result.findings, *findings)), cross_backend=summary)
