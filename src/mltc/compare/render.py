"""The report's outputs: Markdown, CSV, one self-contained HTML file, and its figures."""
from __future__ import annotations

import base64
import html
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mltc.compare.board import markdown_table
from mltc.compare.runs import label, local_artifact
from mltc.compare.significance import friedman_text, sig_parts

__all__ = ["Report", "Board", "plot_per_label", "plot_distribution", "SYNTHETIC_NOTE"]

SYNTHETIC_NOTE = ("SYNTHETIC data: generated documents with power-law labels (mltc's offline default), not a real "
                  "corpus; these numbers say nothing about real text.")
_BANDS = {"head": "tab:blue", "medium": "tab:orange", "tail": "tab:red"}


def _read_per_label(client, run_id, artifact_uri):
    path = local_artifact(artifact_uri, "per_label.csv")
    if path is not None and path.is_file():
        return pd.read_csv(path)
    with tempfile.TemporaryDirectory() as tmp:
        return pd.read_csv(client.download_artifacts(run_id, "per_label.csv", tmp))


def plot_per_label(client, df, board, cols, path, top=3, name_top=5, name_worst=5):
    """Per-label test F1 against training frequency for the top configurations (first seed of each).

    One marker per label and configuration, never a line (labels are not a sequence); the ``name_top``
    most frequent and the ``name_worst`` lowest-F1 labels of the first configuration are named; the
    head / medium / tail bands of the labels' training counts are shaded.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    df = df.assign(config=label(df, cols))
    fig = Figure(figsize=(8, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    drawn, first = 0, None
    markers = "osD^v<>"
    for conf in board["config"].head(top):
        run = df[df.config == conf].sort_values("seed").iloc[0]
        try:
            pl = _read_per_label(client, run["run_id"], run.get("artifact_uri"))
        except Exception:  # noqa: BLE001 -- a run without the artifact is left out of the plot
            continue
        ax.scatter(np.maximum(pl["train_count"], 0.8), pl["f1"], marker=markers[drawn % len(markers)], s=16,
                   alpha=0.75, label=conf)
        first = pl if first is None else first
        drawn += 1
    if first is not None:
        x = np.maximum(first["train_count"].to_numpy(), 0.8)
        if "group" in first:
            for g, color in _BANDS.items():
                m = (first["group"] == g).to_numpy()
                if m.any():
                    ax.axvspan(x[m].min() * 0.9, x[m].max() * 1.1, color=color, alpha=0.07, lw=0)
                    ax.text(np.sqrt(x[m].min() * x[m].max()), 1.065, g, ha="center", va="bottom", fontsize=8,
                            color=color)
        named = list(first.nlargest(name_top, "train_count").index) + list(first.nsmallest(name_worst, "f1").index)
        for n, i in enumerate(dict.fromkeys(named)):
            # staggered, so that labels at the same score (often F1 = 0) stay readable
            ax.annotate(str(first.at[i, "label"])[:18], (x[i], first.at[i, "f1"]), fontsize=6, alpha=0.85,
                        xytext=(3, (3, 10, 17)[n % 3]), textcoords="offset points",
                        arrowprops={"arrowstyle": "-", "lw": 0.4, "alpha": 0.5})
    ax.set_xscale("log")
    ax.set_xlabel("training examples per label (log)")
    ax.set_ylabel("test F1")
    ax.set_ylim(-0.03, 1.12)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"per-label F1, top {drawn} configurations; named: {name_top} most frequent and {name_worst} "
                 "lowest-F1 labels of the first", fontsize=8)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.11, top=0.92)
    fig.savefig(path, dpi=110)


def plot_distribution(df, metric, path, by="strategy"):
    """The metric's distribution over runs (configurations x seeds) for each option of ``by``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = [(k, g[metric].dropna().to_numpy()) for k, g in df.groupby(by)]
    groups = sorted(groups, key=lambda kv: -np.median(kv[1]) if len(kv[1]) else 0)
    fig = Figure(figsize=(max(5, 0.9 * len(groups) + 2), 4))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.boxplot([v for _, v in groups], showmeans=True)
    ax.set_xticks(range(1, len(groups) + 1), [k or "(none)" for k, _ in groups], rotation=30, ha="right")
    for i, (_, v) in enumerate(groups, start=1):
        ax.scatter(np.full(len(v), i) + np.linspace(-0.12, 0.12, len(v)), v, s=10, alpha=0.6, color="tab:blue")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} by {by} (all runs)", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


@dataclass
class Board:
    """One data set's leaderboard: the numbers and their text."""

    dataset: str
    board: pd.DataFrame
    show: pd.DataFrame


@dataclass
class Report:
    """The comparison's tables and figures, written as Markdown, CSV and one self-contained HTML file.

    ``about`` are the sentences that say what was compared (data sets, fixed settings, metric, seeds,
    test documents, how it was ranked); ``synthetic`` puts :data:`SYNTHETIC_NOTE` first.
    """

    title: str
    boards: list
    sig: pd.DataFrame | None = None
    fried: dict | None = None
    figures: dict = field(default_factory=dict)
    about: list = field(default_factory=list)
    synthetic: bool = False
    metric: str = ""
    percent: bool = False
    digits: int | None = None

    @property
    def board(self) -> pd.DataFrame:
        """Every data set's board in one frame (``rank`` is within its data set)."""
        return pd.concat([b.board for b in self.boards], ignore_index=True)

    @property
    def board_show(self) -> pd.DataFrame:
        return pd.concat([b.show for b in self.boards], ignore_index=True)

    @property
    def selection(self) -> str:
        return " ".join(self.about)

    def tables(self) -> str:
        """The leaderboard(s) as Markdown: one table per data set, headed by its name when there are several."""
        if len(self.boards) == 1:
            return markdown_table(self.boards[0].show)
        return "\n\n".join(f"**{b.dataset}**\n\n{markdown_table(b.show)}" for b in self.boards)

    def markdown(self) -> str:
        parts = [f"# {self.title}", ""]
        if self.synthetic:
            parts += [f"> **{SYNTHETIC_NOTE}**", ""]
        parts += [f"- {a}" for a in self.about] + [""]
        for b in self.boards:
            head = "## Leaderboard" + (f": {b.dataset}" if len(self.boards) > 1 else "")
            parts += [head, "", markdown_table(b.show), ""]
        sig, note = sig_parts(self.sig, self.percent, self.digits)
        if sig is not None:
            parts += ["## Paired bootstrap against the reference (test documents)", "",
                      "Each configuration against the best of its data set (or --baseline); p is two-sided.", "",
                      markdown_table(sig), ""]
        elif note:
            parts += [note, ""]
        if self.fried is not None:
            parts += ["## Friedman test and Nemenyi critical difference", "", friedman_text(self.fried, self.metric),
                      "", markdown_table(self.fried["ranks"].rename("average rank").reset_index()
                                         .rename(columns={"index": "method", "method": "method"}))]
        return "\n".join(parts).rstrip() + "\n"

    def html(self) -> str:
        esc = html.escape
        body = [f"<h1>{esc(self.title)}</h1>"]
        if self.synthetic:
            body.append(f'<p class="synthetic"><strong>{esc(SYNTHETIC_NOTE)}</strong></p>')
        body.append("<ul>" + "".join(f"<li>{esc(a)}</li>" for a in self.about) + "</ul>")
        for b in self.boards:
            head = "Leaderboard" + (f": {b.dataset}" if len(self.boards) > 1 else "")
            body += [f"<h2>{esc(head)}</h2>", b.show.to_html(index=False, border=0, classes="t")]
        sig, note = sig_parts(self.sig, self.percent, self.digits)
        if sig is not None:
            body += ["<h2>Paired bootstrap against the reference</h2>",
                     "<p>Each configuration against the best of its data set (or --baseline); p is two-sided.</p>",
                     sig.to_html(index=False, border=0, classes="t")]
        elif note:
            body.append(f"<p>{esc(note)}</p>")
        if self.fried is not None:
            body += ["<h2>Friedman test and Nemenyi critical difference</h2>",
                     f"<p>{esc(friedman_text(self.fried, self.metric))}</p>"]
        for name, path in self.figures.items():
            data = base64.b64encode(Path(path).read_bytes()).decode()
            body.append(f'<h2>{esc(name)}</h2><img alt="{esc(name)}" src="data:image/png;base64,{data}">')
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
                 "table.t{border-collapse:collapse;font-size:13px}table.t td,table.t th{padding:3px 8px;"
                 "border-bottom:1px solid #ddd;text-align:right}table.t td:nth-child(2){text-align:left}"
                 "img{max-width:100%}.synthetic{background:#fff3cd;padding:.6em;border:1px solid #e0c060}")
        return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(self.title)}</title>"
                f"<style>{style}</style></head><body>{''.join(body)}</body></html>")

    def write(self, out: Path) -> dict:
        """Write ``leaderboard.md``, ``leaderboard.csv``, ``significance.csv``, ``report.html`` and figures."""
        out.mkdir(parents=True, exist_ok=True)
        files = {"leaderboard.md": out / "leaderboard.md", "leaderboard.csv": out / "leaderboard.csv",
                 "report.html": out / "report.html"}
        files["leaderboard.md"].write_text(self.markdown())
        self.board.to_csv(files["leaderboard.csv"], index=False)
        if self.sig is not None and not self.sig.empty:
            files["significance.csv"] = out / "significance.csv"
            self.sig.to_csv(files["significance.csv"], index=False)
        files["report.html"].write_text(self.html())
        for name, path in self.figures.items():
            target = out / Path(path).name
            if Path(path) != target:
                target.write_bytes(Path(path).read_bytes())
            files[Path(path).name] = target
        return files
