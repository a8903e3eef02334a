"""Shared fixtures. Tests that need ../shared/data skip where it is absent, and fail in CI."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(os.environ.get("MLTC_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))


def _need(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.is_dir():
        msg = (f"{path} is absent: these tests read the real data set from ../shared/data "
               "(set MLTC_SHARED_DATA to point elsewhere)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " -- required in CI")
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def goemotions_dir() -> Path:
    return _need("goemotions")


@pytest.fixture(scope="session")
def reuters_dir() -> Path:
    return _need("reuters21578")


@pytest.fixture(autouse=True)
def _isolate_env(tmp_path, monkeypatch):
    # keep tests away from the user's runs/ and data cache
    monkeypatch.setenv("MLTC_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("MLTC_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
