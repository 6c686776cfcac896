"""The daemon's place and trust, without a daemon: the project it is keyed on, the runtime folder and
its checks, the socket's checks, the idle setting, the fingerprint that says a daemon is out of
date, and what a worker is given besides its environment (isolation/daemon_place.py,
daemon_key.py, inherited.py), and the daemon's choice of fork server."""

import os
import resource
import shutil
import socket
import subprocess
import sys
import types

import pytest
from conftest import ROOT

from gradcheck.errors import GradcheckError
from gradcheck.isolation import daemon, daemon_client, daemon_key, daemon_place, inherited
from gradcheck.isolation.daemon_place import Unusable

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
NOBODY = 65534


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    """A private runtime folder of a short path (a socket's path holds at most 107 bytes)."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="gc-")
    os.chmod(folder, 0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", folder)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_the_project_is_the_nearest_folder_holding_a_pyproject_else_the_working_folder(tmp_path):
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "pyproject.toml").write_text("")
    (tmp_path / "a" / "b" / "pyproject.toml").mkdir()  # a folder of that name is not a project file
    assert daemon_place.project_root(str(tmp_path / "a" / "b" / "c")) == str(tmp_path / "a")
    assert daemon_place.project_root(str(tmp_path / "a")) == str(tmp_path / "a")
    lone = tmp_path / "lone"
    lone.mkdir()
    if not any((parent / "pyproject.toml").is_file() for parent in lone.parents):
        assert daemon_place.project_root(str(lone)) == str(lone)


def test_the_runtime_folder_is_made_private_and_each_project_and_python_gets_its_own_files(runtime):
    assert daemon_place.place_for(str(ROOT), create=False) is None  # never made: no daemon
    place = daemon_place.place_for(str(ROOT), create=True)
    assert place.folder == os.path.join(runtime, "gradcheck")
    assert os.stat(place.folder).st_mode & 0o777 == 0o700
    assert place.socket == place.lock[: -len(".lock")] + ".sock" == place.log[: -len(".log")] + ".sock"
    other = daemon_place.place_for(str(ROOT / "tests"), create=True)
    assert other.folder == place.folder and other.socket != place.socket


def test_an_xdg_runtime_dir_that_is_not_private_is_passed_over_for_the_temporary_folder(runtime, monkeypatch):
    import tempfile

    os.chmod(runtime, 0o755)
    assert daemon_place.runtime_folder() == os.path.join(tempfile.gettempdir(), f"gradcheck-{os.getuid()}")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "relative/run")
    assert daemon_place.runtime_folder() == os.path.join(tempfile.gettempdir(), f"gradcheck-{os.getuid()}")


def test_a_folder_open_to_others_or_a_symlink_is_refused_with_what_to_do(runtime):
    folder = os.path.join(runtime, "gradcheck")
    os.mkdir(folder, 0o700)
    os.chmod(folder, 0o777)
    with pytest.raises(Unusable) as refused:
        daemon_place.place_for(str(ROOT), create=True)
    assert str(refused.value) == (
        f"gradcheck's daemon folder {folder} is open to other users (mode 777, it must be 700); a daemon there "
        "is not used, since another user could have put it there. Remove it, or set XDG_RUNTIME_DIR to a "
        "private folder of your own."
    )
    os.rmdir(folder)
    elsewhere = os.path.join(runtime, "elsewhere")
    os.mkdir(elsewhere, 0o700)
    os.symlink(elsewhere, folder)
    with pytest.raises(Unusable, match=r"^gradcheck's daemon folder .* is a symbolic link; a daemon there is not used"):
        daemon_place.place_for(str(ROOT), create=False)


@ROOT_ONLY
def test_a_folder_or_socket_of_another_user_is_refused(runtime):
    folder = os.path.join(runtime, "gradcheck")
    os.mkdir(folder, 0o700)
    os.chown(folder, NOBODY, NOBODY)
    with pytest.raises(Unusable, match=rf"belongs to uid {NOBODY}, not to you \(uid 0\); a daemon there is not used"):
        daemon_place.place_for(str(ROOT), create=True)
    os.chown(folder, 0, 0)
    place = daemon_place.place_for(str(ROOT), create=False)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(place.socket)
    listener.listen(1)
    os.chown(place.socket, NOBODY, NOBODY)
    with pytest.raises(Unusable) as refused:
        daemon_client.connect(place)
    assert str(refused.value) == (
        f"gradcheck's daemon socket {place.socket} belongs to uid {NOBODY}, not to you; it was not used. Remove it."
    )
    listener.close()


def test_a_socket_path_that_is_a_link_or_a_plain_file_is_refused_and_none_is_no_daemon(runtime):
    place = daemon_place.place_for(str(ROOT), create=True)
    assert daemon_client.connect(place) is None  # nothing there: no daemon, nothing to say
    target = os.path.join(runtime, "real.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(target)
    listener.listen(1)
    os.symlink(target, place.socket)
    with pytest.raises(Unusable, match=r"is a symbolic link, not gradcheck's daemon socket; it was not used"):
        daemon_client.connect(place)
    os.unlink(place.socket)
    with open(place.socket, "w") as planted:
        planted.write("not a socket")
    with pytest.raises(Unusable, match=r"is not a socket; it was not used as gradcheck's daemon socket\. Remove it\.$"):
        daemon_client.connect(place)
    listener.close()


def test_a_socket_nobody_listens_on_is_a_dead_daemons_and_is_removed(runtime):
    place = daemon_place.place_for(str(ROOT), create=True)
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(place.socket)
    dead.close()  # bound, never listened: connecting is refused, as with a killed daemon's
    assert daemon_client.connect(place) is None
    assert not os.path.lexists(place.socket)


def test_the_idle_time_and_the_switch_are_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("GRADCHECK_DAEMON_IDLE", raising=False)
    assert daemon_place.idle_seconds() == 1200.0
    monkeypatch.setenv("GRADCHECK_DAEMON_IDLE", "0.5")
    assert daemon_place.idle_seconds() == 0.5
    for bad in ("abc", "0", "-3", "nan", "inf"):
        monkeypatch.setenv("GRADCHECK_DAEMON_IDLE", bad)
        with pytest.raises(GradcheckError) as refused:
            daemon_place.idle_seconds()
        assert str(refused.value) == (
            f"GRADCHECK_DAEMON_IDLE is {bad!r}; it must be the daemon's idle time in seconds, a number above 0 "
            "(default 1200, 20 minutes). Set it to one, or unset it."
        )
    for value, off in (("off", True), ("OFF", True), ("0", True), ("false", True), ("on", False), ("", False)):
        monkeypatch.setenv("GRADCHECK_DAEMON", value)
        assert daemon_place.disabled() is off, value


def test_the_fingerprint_names_what_changed():
    now = daemon_key.fingerprint()
    assert set(now) == set(daemon_key.PARTS) and daemon_key.differences(now, dict(now)) == []
    site = os.path.dirname(next(entry for entry in now["packages"] if "dist-info" in entry))
    before = {**now, "packages": [f"{site}/tensorflow-2.21.0.dist-info", f"{site}/old_thing-1.0.dist-info"]}
    after = {**now, "packages": [f"{site}/tensorflow-2.21.1.dist-info", f"{site}/jax-0.10.2.dist-info"]}
    assert daemon_key.differences(before, after) == [
        "the installed packages have changed (old_thing-1.0 was removed; tensorflow-2.21.0 is now "
        "tensorflow-2.21.1; jax-0.10.2 was installed)"
    ]
    assert daemon_key.differences(now, {**now, "gradcheck": "0" * 64, "python": "3.99"}) == [
        "another Python",
        "gradcheck's files have changed since it started",
    ]
    assert daemon_key.differences(now, "garbage") == ["its fingerprint is unreadable"]


def test_an_edited_gradcheck_file_changes_the_fingerprint(tmp_path):
    """On a copy of the package: the fingerprint a daemon and a client each take of their gradcheck."""
    shutil.copytree(ROOT / "gradcheck", tmp_path / "gradcheck", ignore=shutil.ignore_patterns("__pycache__"))
    code = "from gradcheck.isolation.daemon_key import fingerprint; print(fingerprint()['gradcheck'])"

    def digest() -> str:
        environment = {**os.environ, "PYTHONPATH": str(tmp_path)}
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, env=environment, capture_output=True, text=True
        )
        return done.stdout

    first = digest()
    assert first == digest()
    with open(tmp_path / "gradcheck" / "codes.py", "a") as edited:
        edited.write("# edited\n")
    assert digest() != first


def test_a_worker_gets_the_commands_umask_limits_and_affinity():
    """In a forked child, as a daemon's server forks a worker: set as the client captured them."""
    mask = os.umask(0o027)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 512), hard))
    try:
        sent = inherited.capture()
    finally:
        os.umask(mask)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    assert sent["nice"] == nice
    sent["nice"] = min(nice + 3, 19)  # as `nice -n 3 gradcheck ...` sends it (a lower priority)
    assert inherited.refusal(sent) is None
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker
        inherited.apply(sent)
        seen = (
            os.umask(0),
            resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            sorted(os.sched_getaffinity(0)),
            os.getpriority(os.PRIO_PROCESS, 0),
        )
        os.write(writer, repr(seen).encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(pid, 0)
    assert os.read(reader, 1000).decode() == repr((0o027, min(soft, 512), sent["affinity"], min(nice + 3, 19)))
    os.close(reader)
    assert (
        inherited.refusal({**sent, "groups": [12345, []]})
        == "the command runs with other groups than the daemon (newgrp, sg)"
    )
    assert inherited.refusal({"umask": "x"}) == "its description of the command's process is malformed"
    assert inherited.refusal(None) == "its description of the command's process is malformed"


def test_one_fork_server_per_set_of_import_time_variables(monkeypatch, tmp_path):
    """The daemon's choice of server, with a stand-in for the fork server process (no process)."""
    made = []

    class Server:
        def __init__(self, command, environment):
            self.environment, self.alive, self.process = (
                environment,
                True,
                types.SimpleNamespace(pid=len(made), returncode=-9),
            )
            made.append(self)

        def close(self):
            self.alive = False

    monkeypatch.setattr(daemon, "ForkServer", Server)
    monkeypatch.setattr(daemon, "log", lambda text: None)
    place = daemon_place.Place(
        str(tmp_path), str(tmp_path), str(tmp_path / "s"), str(tmp_path / "l"), str(tmp_path / "g")
    )
    keeper = daemon.Daemon(place, 60.0, {}, None)  # type: ignore[arg-type]
    base = {"PATH": "/bin", "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": "/src"}
    first = keeper._server_for(base)
    assert keeper._server_for({**base, "PATH": "/usr/bin", "TERM": "dumb"}) is first  # not read at import
    onednn = keeper._server_for({**base, "TF_ENABLE_ONEDNN_OPTS": "0"})
    jax = keeper._server_for({**base, "KERAS_BACKEND": "jax"})
    assert len({id(first), id(onednn), id(jax)}) == 3 and keeper._server_for(base) is first
    keeper._server_for({**base, "PYTHONPATH": "/other"})
    keeper._server_for({**base, "HOME": "/elsewhere"})  # a fifth: the least recently used idle one goes
    assert onednn in keeper.retired and len(keeper.servers) == 4
    keeper._tidy()
    assert not onednn.alive and keeper.retired == []
    first.alive = False  # died (a layer killed it): the next worker gets a new one
    assert keeper._server_for(base) is not first and len(made) == 6


def test_a_server_is_keyed_on_the_variables_an_import_reads_and_on_kerass_config_file(tmp_path):
    """A client whose JAX, torch or locale settings, or whose keras.json, differ from the first
    client's gets a server of its own (a cold run reads them as it imports); PATH and the like do not."""
    home = tmp_path / "keras"
    home.mkdir()
    base = {"PATH": "/bin", "KERAS_HOME": str(home), "LANG": "C.UTF-8"}
    key = daemon_key.server_key(base)
    assert key == (("KERAS_HOME", str(home)), ("LANG", "C.UTF-8"), ("keras.json", ""))
    assert daemon_key.server_key({**base, "PATH": "/usr/bin", "TERM": "dumb", "PWD": "/x"}) == key
    for name, value in (
        ("JAX_ENABLE_X64", "1"),
        ("TORCH_HOME", "/t"),
        ("LC_ALL", "C"),
        ("TZ", "UTC"),
        ("XDG_CACHE_HOME", "/c"),
        ("MALLOC_ARENA_MAX", "2"),
        ("LANG", "de_DE.UTF-8"),
    ):
        assert daemon_key.server_key({**base, name: value}) != key, name
    config = home / "keras.json"
    config.write_text(
        '{"floatx": "float32", "epsilon": 1e-07, "backend": "tensorflow", "image_data_format": "channels_last"}'
    )
    assert daemon_key.server_key(base) == key  # what Keras writes where there was none: its defaults
    config.write_text('{"image_data_format": "channels_first"}')
    assert daemon_key.server_key(base)[-1] == ("keras.json", f'{config}\0{{"image_data_format": "channels_first"}}')
    config.write_text("{not json")
    assert daemon_key.server_key(base)[-1] == ("keras.json", f"{config}\0{b'{not json'.hex()}")
    config.unlink()
    os.mkfifo(config)  # nothing writes to it: reading it would wait for ever
    assert daemon_key.server_key(base)[-1] == ("keras.json", f"{config}\0not a file")
    elsewhere = tmp_path / "home"
    (elsewhere / ".keras").mkdir(parents=True)
    (elsewhere / ".keras" / "keras.json").write_text('{"floatx": "float64"}')
    assert daemon_key.server_key({"HOME": str(elsewhere)})[-1] == (
        "keras.json",
        f'{elsewhere}/.keras/keras.json\0{{"floatx": "float64"}}',
    )


def test_an_edited_keras_config_retires_the_server_that_read_the_old_one(monkeypatch, tmp_path):
    made = []

    class Server:
        def __init__(self, command, environment):
            self.environment, self.alive = environment, True
            self.process = types.SimpleNamespace(pid=len(made), returncode=None)
            made.append(self)

        def close(self):
            self.alive = False

    monkeypatch.setattr(daemon, "ForkServer", Server)
    monkeypatch.setattr(daemon, "log", lambda text: None)
    place = daemon_place.Place(*(str(tmp_path / name) for name in ("p", "f", "s", "l", "g")))
    keeper = daemon.Daemon(place, 60.0, {}, None)  # type: ignore[arg-type]
    environment = {"KERAS_HOME": str(tmp_path), "KERAS_BACKEND": "tensorflow"}
    first = keeper._server_for(environment)
    jax = keeper._server_for({**environment, "KERAS_BACKEND": "jax"})
    assert keeper._server_for(environment) is first
    (tmp_path / "keras.json").write_text('{"image_data_format": "channels_first"}')
    second = keeper._server_for(environment)
    assert second is not first and keeper.retired == [first] and list(keeper.servers.values()) == [jax, second]
    keeper._tidy()
    assert not first.alive and jax.alive and second.alive


def test_a_relative_keras_home_or_pythonpath_makes_a_cold_run(runtime, monkeypatch):
    place = daemon_place.place_for(str(ROOT), create=True)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(place.socket)
    listener.listen(1)
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("GRADCHECK_DAEMON", raising=False)
    notes = []
    try:
        monkeypatch.setenv("KERAS_HOME", ".keras")
        assert daemon_client.attach(notes.append) is None
        monkeypatch.delenv("KERAS_HOME")
        monkeypatch.setenv("PYTHONPATH", "src")
        assert daemon_client.attach(notes.append) is None
    finally:
        listener.close()
    assert notes == [
        "gradcheck: not using the daemon: KERAS_HOME is a relative folder (.keras).",
        "gradcheck: not using the daemon: PYTHONPATH holds a relative folder (src).",
    ]
    os.unlink(place.socket)
    assert daemon_client.attach(notes.append) is None
    assert notes[-1] == f"gradcheck: no daemon runs for {ROOT} (`gradcheck --daemon` starts one there)."
