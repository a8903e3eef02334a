"""Progress of long stages: bars with an ETA on a terminal, one line per stage elsewhere (issue 19)."""
import io
import logging

import pytest

from mltc import progress
from mltc.progress import note, track


def test_non_interactive_output_is_one_line_per_stage(monkeypatch, caplog):
    monkeypatch.setenv("MLTC_PROGRESS", "0")
    with caplog.at_level(logging.INFO, logger="mltc"):
        assert list(track(range(50), "per-label fits")) == list(range(50))
        note("MLP: early stopping at epoch %d of %d", 7, 30)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and lines[0].startswith("per-label fits: 50/50 done in")
    assert lines[1] == "MLP: early stopping at epoch 7 of 30"


def test_short_stages_stay_quiet_below_min_seconds(monkeypatch, caplog):
    monkeypatch.setenv("MLTC_PROGRESS", "0")
    with caplog.at_level(logging.INFO, logger="mltc"):
        assert sum(track(iter([1, 2, 3]), "neighbours", min_seconds=60)) == 6
        assert list(track([5], "one chunk")) == [5]
    assert not caplog.records


def test_bars_nest_and_show_counts(monkeypatch):
    monkeypatch.setenv("MLTC_PROGRESS", "1")
    from rich.console import Console

    buf = io.StringIO()
    monkeypatch.setattr(progress, "_console", lambda: Console(file=buf, force_terminal=True, width=100))
    seen = []
    for fold in track(range(3), "out-of-fold folds"):
        # a nested loop (per-label fits inside a fold) must not start a second live display
        seen += [(fold, j) for j in track(range(4), "per-label fits")]
    assert len(seen) == 12 and progress._ACTIVE is None
    text = buf.getvalue()
    assert "out-of-fold folds" in text and "per-label fits" in text


def test_an_early_break_closes_the_bar(monkeypatch):
    monkeypatch.setenv("MLTC_PROGRESS", "1")
    from rich.console import Console

    monkeypatch.setattr(progress, "_console", lambda: Console(file=io.StringIO(), force_terminal=True))
    for epoch in track(range(1, 31), "MLP epoch"):
        if epoch == 4:
            break
    import gc

    gc.collect()
    assert progress._ACTIVE is None
    # and the next stage can draw again
    assert list(track(range(2), "next")) == [0, 1]


@pytest.mark.parametrize("env,expected", [({"MLTC_PROGRESS": "0"}, False), ({"MLTC_PROGRESS": "1"}, True),
                                          ({"CI": "true"}, False)])
def test_interactive_follows_the_environment(monkeypatch, env, expected):
    monkeypatch.delenv("MLTC_PROGRESS", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert progress.interactive() is expected
