"""Shared helpers: compose the real Hydra config, run the real CLI."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# Decoded image folders are cached under $XDG_CACHE_HOME (search/data/files.py): not the user's, during tests.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="compound-scaling-test-cache-")

# Two cores: one thread per test process avoids oversubscription when pytest and a subprocess overlap.
torch.set_num_threads(1)

# A search that finishes in seconds: ResNet-18 at quarter width on 16 px, 3 candidates, one seed
# each (tests/test_confirm.py turns search.confirm_top back on), in one process on SQLite (tests of
# local workers ask for storage=journal and search.workers; test_search.py runs the defaults).
TINY = [
    "base=resnet18", "base.width=0.25", "base.resolution=16",
    "data.synthetic_size=300", "data.native_size=32",
    "search.alpha.min=1", "search.alpha.max=2", "search.alpha.step=1",
    "search.beta.min=1", "search.beta.max=1.5", "search.beta.step=0.5",
    "search.gamma.min=1", "search.gamma.max=1.5", "search.gamma.step=0.5",
    "search.tolerance=0.3", "search.flops_tolerance=0.6",
    "train.epochs=2", "train.batch_size=32", "train.threads=1", "search.confirm_top=0",
    "storage=sqlite", "search.workers=1",
]


def compose(*overrides, runs_dir, own_base: bool = False):
    """The config of TINY and `overrides`. own_base=True leaves out TINY's base=resnet18, so that an
    experiment keeps its own base (at TINY's width and resolution)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from search.config import register

    register()
    tiny = [a for a in TINY if not (own_base and a.startswith("base="))]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hydra_compose("config", overrides=[*tiny, f"runs_dir={runs_dir}", *overrides])


def pythonpath() -> str:
    """The checkout first, then whatever PYTHONPATH already holds (where the packages may live)."""
    return os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)


def run_entry(*args, **kwargs) -> subprocess.CompletedProcess:
    """`python run_search.py *args` as a user types it: no overrides added."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=pythonpath())
    return subprocess.run(
        [sys.executable, str(ROOT / "run_search.py"), *args],
        capture_output=True, text=True, env=env, cwd=ROOT, **kwargs,
    )


def run_module(module: str, *args) -> subprocess.CompletedProcess:
    """`python -m module *args` in a fresh process, as a user types it (analysis scripts, search.fidelity)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=pythonpath())
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=ROOT)


def run_cli(*overrides, runs_dir, **kwargs) -> subprocess.CompletedProcess:
    return run_entry(*TINY, f"runs_dir={runs_dir}", *overrides, **kwargs)


def popen_search(*overrides, runs, env=None, output: Path | None = None, preexec_fn=None) -> subprocess.Popen:
    """The real CLI in the background, its stdout and stderr merged into one pipe (or the file `output`);
    `preexec_fn` runs in the child before it starts (e.g. to ignore SIGINT as a shell's `&` does)."""
    out = subprocess.PIPE if output is None else open(output, "w")
    try:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "run_search.py"), *TINY, f"runs_dir={runs}", *overrides],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, text=True, env=env, preexec_fn=preexec_fn,
        )
    finally:
        if output is not None:
            out.close()  # the child has its own copy


def wait_for_output(output: Path, text: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    """Block until `text` appears in the file `output` that `proc` writes (popen_search(output=...))."""
    deadline = time.time() + timeout
    while text not in output.read_text():
        if proc.poll() is not None:
            raise AssertionError(f"the process exited ({proc.returncode}) first: {output.read_text()[-2000:]}")
        if time.time() > deadline:
            raise AssertionError(f"no {text!r} within {timeout} s: {output.read_text()[-2000:]}")
        time.sleep(0.2)


def sqlite_states(db: Path) -> set:
    """The states of a SQLite study's trials, read without creating or locking anything: opening
    the file through Optuna would create its tables, racing the search that is creating them."""
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            return {state for (state,) in con.execute("SELECT state FROM trials")}
    except sqlite3.OperationalError:  # no file or no tables yet
        return set()


def wait_one_done_one_running(db: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    """Block until the search in `proc` has finished one trial and is running the next."""
    deadline = time.time() + timeout
    while not {"COMPLETE", "RUNNING"} <= sqlite_states(db):
        if proc.poll() is not None:
            raise AssertionError(f"the search exited ({proc.returncode}) first: {proc.communicate()[0][-2000:]}")
        if time.time() > deadline:
            raise AssertionError(f"no trial finished within {timeout} s")
        time.sleep(0.2)


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"


# ---------------------------------------------------------------- a real PostgreSQL server


def must_not_skip(item) -> bool:
    """Under CI=true the PostgreSQL tests must run: CI installs the server and the driver."""
    return os.environ.get("CI") == "true" and (
        "postgres" in item.name.lower() or "postgres_url" in getattr(item, "fixturenames", ())
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A PostgreSQL test skipped under CI=true fails the run, with the skip reason."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and must_not_skip(item):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} was skipped under CI=true, where it must run: {reason}"


def _postgres_bin() -> Path | None:
    """The server binaries: Debian keeps them in /usr/lib/postgresql/<version>/bin, off PATH."""
    import glob
    import shutil

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).resolve().parent if pg_ctl else None


@pytest.fixture(scope="session")
def postgres_url():
    """Start a throw-away PostgreSQL server on a free port; yield a URL with a (never needed) password.

    PostgreSQL refuses to run as root, so under root the server runs as `nobody`.
    Skips only when no server can be started here (CI installs Debian's postgresql).
    """
    import shutil
    import socket
    import tempfile

    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    try:
        import psycopg
    except ImportError:
        pytest.skip('no PostgreSQL driver (pip install -e ".[postgres]")')
    as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
    home = Path(tempfile.mkdtemp(prefix="pgtest-"))
    data = home / "data"
    if as_user:
        shutil.chown(home, "nobody")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def pg(*args, **kw):
        return subprocess.run([*as_user, str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True, **kw)

    started = pg("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "--no-locale", "-E", "UTF8")
    if started.returncode == 0:
        options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        started = pg("pg_ctl", "-D", str(data), "-o", options, "-l", str(home / "log"), "-w", "start")
    if started.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        pytest.skip(f"cannot start a PostgreSQL server: {started.stderr.strip().splitlines()[-1:]}")
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE optuna")
        yield f"postgresql+psycopg://postgres:pg-s3cret@127.0.0.1:{port}/optuna"
    finally:
        pg("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)
