"""The JSON report of every sample layer and of Keras's and keras-hub's own layers, against a stored copy.

A refactor (rooms, the check interface, the backend seam) must not change a single byte of what a
user gets, and this test says so for every run the suite already makes (the runs are shared with
tests/checks/test_samples.py, test_keras_builtins.py, test_peer_layers.py and test_causes_and_severity.py, so it
costs no check of its own). A change meant to alter reports refreshes the copies, and the diff of
tests/data/snapshots/ is then the review of what users will see:

    GRADCHECK_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/checks/test_report_snapshots.py

Numbers depend on TensorFlow and Keras: on other versions than the copies were made with, the
comparison is skipped and says why (the versions are in each copy).
"""

import json
import os
import re

import pytest
from conftest import ROOT, run_cli_shared, sample_cases
from test_causes_and_severity import RUNS as VERDICT_RUNS, run as verdict
from test_keras_builtins import BUILTINS, builtin
from test_peer_layers import PEERS, peer

SNAPSHOTS = ROOT / "tests" / "data" / "snapshots"
UPDATE = bool(os.environ.get("GRADCHECK_UPDATE_SNAPSHOTS"))


def _runs() -> dict:
    runs = {f"sample-{c.id}": (lambda c=c: run_cli_shared([f"{c.file}:{c.name}", *c.args, "--json"])) for c in sample_cases()}
    runs.update({f"keras-{name}": (lambda name=name: builtin(name)) for name in BUILTINS})
    runs.update({f"keras_hub-{name}": (lambda name=name: peer(name)) for name in PEERS})
    runs.update({f"verdict-{name}": (lambda name=name: verdict(name)) for name in VERDICT_RUNS})
    return runs


RUNS = _runs()


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_report_is_the_stored_one(name):
    if name.startswith("keras_hub-"):
        pytest.importorskip("keras_hub")
    result = RUNS[name]()
    path = SNAPSHOTS / (re.sub(r"[^\w.-]", "_", name) + ".json")
    document = json.loads(result.stdout) if result.stdout else None
    versions = _versions(document)  # Python's patch version differs between machines
    if UPDATE:
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        stored = {"exit": result.exit_code, "versions": versions, "document": document}
        path.write_text(json.dumps(stored, indent=1) + "\n")
        return
    stored = json.loads(path.read_text())
    made_with = stored["versions"] if isinstance(stored["versions"], list) else [stored["versions"]]
    for made, now in zip(made_with, versions or []):
        # The framework the report was checked on (its `backend`), and Keras, decide the numbers.
        framework = next((key for key in ("jax", "torch", "tensorflow") if made and key in made), "tensorflow")
        if made and now and (made.get(framework), made.get("keras")) != (now.get(framework), now.get("keras")):
            pytest.skip(f"the copy was made with {framework} {made.get(framework)} / Keras {made.get('keras')}")
    assert result.exit_code == stored["exit"], result
    assert document == stored["document"], f"{name}: the report changed (see the module's docstring)"


def _versions(document) -> list | None:
    """The versions of each report of the document (one, or one per backend), taken out of it."""
    if not document:
        return None
    reports = document["targets"] if "targets" in document else [document]
    return [report.pop("versions", None) for report in reports]


def test_every_stored_copy_belongs_to_a_run():
    stored = {path.stem for path in SNAPSHOTS.glob("*.json")}
    assert stored == {re.sub(r"[^\w.-]", "_", name) for name in RUNS}
