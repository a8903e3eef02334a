"""Optuna studies shared by several processes (or machines) through one storage.

Several ``mltc run -m hparams_search=...`` workers that name the same ``hydra.sweeper.storage``
and ``hydra.sweeper.study_name`` work on one study: each asks the study for the next trial, and
together they run exactly ``n_trials`` trials. Three things need a lock around them, and this
module provides it (:func:`study_lock`): creating the study's tables, asking for trials while
counting those already asked, and creating the sweep's MLflow parent run, so that every worker
logs under the same parent.

Optuna 2.10 (the version Hydra's Optuna sweeper allows) stamps its schema version through a
connection it never commits under SQLAlchemy 2, and then fails ("assert version is not None",
or "database is locked" on SQLite); :func:`open_storage` creates the schema and its version
stamp itself, in one committed transaction, before Optuna opens the storage.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("mltc")

__all__ = ["SharedStudy", "open_storage", "study_lock", "storage_url"]


def storage_url(storage) -> str | None:
    """The storage's URL (a string, or an RDBStorage's ``url``); None for an in-memory study."""
    if storage is None:
        return None
    return str(getattr(storage, "url", storage))


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        rest = url[len("sqlite:///"):]
        return Path(rest) if rest and rest != ":memory:" else None
    return None


@contextlib.contextmanager
def study_lock(url: str | None, name: str):
    """Hold a lock named after ``name`` that every process using the storage ``url`` sees.

    PostgreSQL: a session advisory lock (``pg_advisory_lock``). SQLite: an exclusive ``flock`` on a
    file beside the database. Anything else (MySQL, ...): no lock, with a warning that workers may
    run a few trials more than ``n_trials`` between them.
    """
    if url is None:
        yield
        return
    if url.startswith(("postgresql", "postgres")):
        import sqlalchemy as sa

        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        key = zlib.crc32(f"mltc:{name}".encode())  # a 32-bit key, stable across processes and machines
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        finally:
            engine.dispose()
        return
    path = _sqlite_path(url)
    if path is not None:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.mltc-lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    log.warning("no cross-process lock for storage %s: workers sharing the study may run a few more trials than "
                "n_trials between them (PostgreSQL or SQLite storages are locked)", _redact(url))
    yield


def _redact(url: str) -> str:
    """The URL without its password (for logs and tags)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 -- not a database URL: nothing to hide
        return url


def open_storage(url: str | None):
    """An Optuna storage for ``url`` that works with Optuna 2.10 under SQLAlchemy 2 (None: in memory).

    Creates Optuna's tables, its ``version_info`` row and the alembic stamp in one committed
    transaction (under :func:`study_lock`, so that workers starting together do not race on
    creating the tables), then opens ``optuna.storages.RDBStorage(url)``.
    """
    if url is None:
        return None
    import optuna
    import sqlalchemy as sa
    from optuna.storages import RDBStorage
    from optuna.storages._rdb import models

    if not url.startswith(("postgresql", "postgres", "sqlite", "mysql")):
        raise ValueError(f"hydra.sweeper.storage={url!r} is not a database URL Optuna can use; give e.g. "
                         "postgresql://user@host:5432/optuna or sqlite:///path/optuna.db")
    if (path := _sqlite_path(url)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    with study_lock(url, "optuna-schema"):
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            models.BaseModel.metadata.create_all(engine)
            with engine.begin() as conn:
                import alembic.migration
                from alembic.script import ScriptDirectory

                ctx = alembic.migration.MigrationContext.configure(conn)
                if ctx.get_current_revision() is None:
                    script = ScriptDirectory(str(Path(models.__file__).parent / "alembic"))
                    ctx.stamp(script, script.get_current_head())
                table = models.VersionInfoModel.__table__
                if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0:
                    conn.execute(table.insert().values(schema_version=models.SCHEMA_VERSION,
                                                       library_version=optuna.__version__))
        finally:
            engine.dispose()
    return RDBStorage(url)


@dataclass
class SharedStudy:
    """An Optuna study on a storage several processes share (``hydra.sweeper.storage`` set)."""

    url: str
    name: str

    @property
    def sweep_id(self) -> str:
        """The sweep's id: the same for every worker of the study, whatever else its command line says."""
        body = f"{_redact(self.url)}\n{self.name}"
        return "study-" + hashlib.sha256(body.encode()).hexdigest()[:12]

    def lock(self):
        """The study's lock (see :func:`study_lock`)."""
        return study_lock(self.url, f"study:{self.name}")

    @classmethod
    def from_config(cls, config) -> SharedStudy | None:
        """The shared study a Hydra config's Optuna sweeper names, or None (no storage, or not Optuna)."""
        sweeper = config.hydra.get("sweeper") or {}
        if "optuna" not in str(sweeper.get("_target_", "")).lower() or not sweeper.get("storage"):
            return None
        if not sweeper.get("study_name"):
            raise ValueError("hydra.sweeper.storage is set but hydra.sweeper.study_name is not: workers find their "
                             "shared study by its name; set hydra.sweeper.study_name=<name>")
        return cls(url=storage_url(sweeper.storage), name=str(sweeper.study_name))

    def all_done(self, n_trials: int) -> bool:
        """Whether the study holds ``n_trials`` trials and none of them is still running."""
        import optuna

        try:
            study = optuna.load_study(study_name=self.name, storage=open_storage(self.url))
        except KeyError:
            return False
        trials = study.get_trials(deepcopy=False)
        return len(trials) >= n_trials and not any(t.state == optuna.trial.TrialState.RUNNING for t in trials)


def worker_seed(seed, index: int):
    """The sampler seed of the ``index``-th worker to join a shared study (distinct, so no two propose alike)."""
    return None if seed is None else int(seed) + index
