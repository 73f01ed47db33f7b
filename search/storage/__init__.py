"""Where the Optuna study lives: SQLite (one process), a journal file (local workers) or
PostgreSQL (several machines); URLs and passwords. The queue and heartbeats are queue.py and heartbeat.py."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import optuna


STUDY_FILES = {"sqlite": "study.db", "journal": "study.journal"}  # in the run folder, unless storage.path


class StorageError(RuntimeError):
    """A study storage that cannot be opened; the message never shows a password."""


def postgres_url(cfg) -> str:
    url = cfg.storage.url or os.environ.get("OPTUNA_STORAGE_URL")
    if not url:
        raise StorageError("storage=postgres needs storage.url=... or $OPTUNA_STORAGE_URL (postgresql://user:password@host/db)")
    return url


def make_storage(cfg, run_dir: Path):
    """SQLite (one process), a journal file (local workers) or PostgreSQL (several machines)."""
    kind = cfg.storage.kind
    if kind == "postgres":
        return open_rdb(postgres_url(cfg), cfg.storage.heartbeat_interval, cfg.storage.grace_period)
    path = study_file(cfg, run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        return sqlite_storage(path)
    return _journal(path)


def study_file(cfg, run_dir: Path) -> Path:
    """The SQLite database or journal file of a run (not used by PostgreSQL)."""
    return Path(cfg.storage.path or run_dir / STUDY_FILES[cfg.storage.kind]).resolve()


def sqlite_storage(path: Path, tries: int = 5):
    """An RDBStorage on the SQLite file `path`, safe when several processes create it at once: each
    creates Optuna's tables and stamps their version unless it sees them, so a process that looked
    just before another wrote fails ("table already exists", a UNIQUE version stamp, "database is
    locked"); it tries again and then finds the tables made."""
    import sqlalchemy.exc

    for attempt in range(tries):
        try:
            return optuna.storages.RDBStorage(f"sqlite:///{path}")
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            if attempt == tries - 1:
                raise
            time.sleep(0.05 * 2**attempt)


def _journal(path: Path):
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def open_existing(cfg, run_dir: Path):
    """The run's storage, opened without creating or changing any file; None where its SQLite or
    journal file does not exist yet (or holds no Optuna tables)."""
    if cfg.storage.kind == "postgres":
        return open_rdb(postgres_url(cfg))
    path = study_file(cfg, run_dir)
    if not path.is_file():
        return None
    if cfg.storage.kind == "journal":
        return _journal(path)  # only reads an existing file
    import sqlalchemy.exc

    try:
        return optuna.storages.RDBStorage(f"sqlite:///{path.as_uri()}?mode=ro&uri=true")
    except (sqlalchemy.exc.SQLAlchemyError, RuntimeError):  # no tables yet (it cannot create them), or an old schema
        return None


def load_existing(storage, name: str) -> optuna.Study | None:
    """The study `name` in `storage` (from open_existing), or None where either does not exist."""
    if storage is None:
        return None
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def check_reachable(cfg) -> None:
    """Open a PostgreSQL storage once, so that a bad URL fails before any file is written."""
    if cfg.storage.kind == "postgres":
        open_rdb(postgres_url(cfg)).remove_session()


def open_rdb(url: str, heartbeat_interval: int | None = None, grace_period: int | None = None):
    """An RDBStorage on `url`; an unreachable server or a bad URL is a one-line StorageError."""
    import sqlalchemy.exc

    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5; we rely on them knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as e:
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()
        raise StorageError(
            f"cannot open the study storage {hide_password(url)}: {reason[0] if reason else type(e).__name__}"
        ) from None


def hide_password(url: str) -> str:
    """`url` with its password replaced by ***."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: show at most its scheme
        scheme, sep, _ = url.partition("://")
        return f"{scheme}://..." if sep and scheme.replace("+", "").isalnum() else "(an unparsable URL)"


def redact(config: dict) -> dict:
    """The resolved config as saved in config.yaml: storage.url without its password."""
    url = config.get("storage", {}).get("url")
    if url:
        config["storage"]["url"] = hide_password(url)
    return config


def unredact(cfg):
    """A config read back from config.yaml, whose PostgreSQL URL has *** for its password: the URL
    is dropped so that $OPTUNA_STORAGE_URL is read instead. Returns `cfg`, changed in place."""
    if cfg.storage.kind == "postgres" and "***" in str(cfg.storage.url):
        cfg.storage.url = None
    return cfg


def heartbeat_grace(cfg) -> int | None:
    """Seconds after which a silent running trial is retried; None for SQLite (one process)."""
    return None if cfg.storage.kind == "sqlite" else cfg.storage.grace_period


def storage_hint(cfg, run_dir: Path) -> str:
    """What to pass to optuna-dashboard for this run (never includes a password)."""
    if cfg.storage.kind == "postgres":
        return hide_password(postgres_url(cfg))
    path = study_file(cfg, run_dir)
    return f"sqlite:///{path}" if cfg.storage.kind == "sqlite" else str(path)
