"""Printing results for people and writing them as artifacts."""
from __future__ import annotations

import json

import numpy as np

__all__ = ["print_results", "result_artifacts", "plot_per_label_f1", "warm_up", "write_json"]


def write_json(obj):
    """An artifact writer: ``obj`` as indented JSON (numpy arrays and numbers as lists and numbers)."""
    def _w(path):
        path.write_text(json.dumps(obj, indent=2, default=_default))
    return _w


def _default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def warm_up(plotting: bool = True) -> None:
    """Import what printing and plotting need (called in the background while a model fits)."""
    if plotting:
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401
    import rich.console  # noqa: F401
    import rich.table  # noqa: F401


def print_results(result, show, *, title="", run_id=None, store=None) -> None:
    """Print the headline metrics as a table, then where the run is (``run_id`` in ``store``) and how to see it."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"mltc results - {title}" if title else "mltc results")
    table.add_column("metric")
    table.add_column("test", justify="right")
    table.add_column("validation", justify="right")
    for name in show:
        if name in result.metrics:
            v = result.val_metrics.get(name)
            table.add_row(name, f"{result.metrics[name]:.4f}", "" if v is None else f"{v:.4f}")
    s = result.sizes
    table.caption = (f"train {s['n_train']} (fit on {s['n_train_fit']}) / val {s['n_val']} / test {s['n_test']} docs, "
                     f"{s['n_labels']} labels, {s['n_features']} features; "
                     f"{sum(result.timings.values()):.1f}s")
    console = Console()
    console.print(table)
    console.print("validation: scores on the validation split, the one the thresholds were tuned on (optimistic "
                  "for tuned thresholds); test: held-out documents, never used for any choice.", style="dim",
                  highlight=False)
    if run_id:
        ui = "mltc ui" + (f" --uri {store}" if store else "")
        console.print(f"run {run_id} in {store or 'the MLflow store'}; see it with `{ui}`", highlight=False,
                      soft_wrap=True)


def plot_per_label_f1(per_label, path) -> None:
    """Per-label test F1 against training frequency (log x axis)."""
    # a bare Figure on the Agg canvas: pyplot's import and global figure state are not needed
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colors = {"head": "tab:blue", "medium": "tab:orange", "tail": "tab:red"}
    groups = per_label["group"] if "group" in per_label else ["medium"] * len(per_label)
    x = np.maximum(per_label["train_count"].to_numpy(), 0.8)
    for g in ("head", "medium", "tail"):
        m = np.asarray(groups) == g
        if m.any():
            ax.scatter(x[m], per_label["f1"].to_numpy()[m], label=g, color=colors[g], s=18, alpha=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training examples per label (log)")
    ax.set_ylabel("test F1")
    ax.set_ylim(-0.03, 1.03)
    ax.legend(title="group")
    ax.grid(alpha=0.3)
    # fixed margins: tight_layout draws the figure twice to measure it
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.11, top=0.97)
    fig.savefig(path, dpi=110)


class PerLabelPlot:
    """Artifact writer for :func:`plot_per_label_f1`; picklable, so a tracking process can draw it."""

    portable = True

    def __init__(self, per_label):
        self.per_label = per_label

    def __call__(self, path) -> None:
        plot_per_label_f1(self.per_label, path)


def result_artifacts(result, config_yaml: str) -> dict:
    """``{artifact name: writer(path)}`` for a run's files."""
    files = {
        "config.yaml": lambda p: p.write_text(config_yaml),
        "per_label.csv": lambda p: result.per_label.to_csv(p, index=False),
        "imbalance_profile.json": write_json(result.profiles),
        "per_label_f1.png": PerLabelPlot(result.per_label),
        "timings.json": lambda p: p.write_text(json.dumps(result.timings, indent=2)),
    }
    if getattr(result, "details", None):
        files["details.json"] = write_json(result.details)
    if result.thresholds is not None:
        files["thresholds.json"] = write_json({"labels": result.label_names,
                                               "thresholds": np.broadcast_to(result.thresholds,
                                                                             (len(result.label_names),)).tolist(),
                                               **result.threshold_summary})
    return files
