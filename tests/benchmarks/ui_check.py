"""Check `mltc ui` in headless Chromium: the experiment page of a finished sweep lists its runs.

    python tests/benchmarks/ui_check.py [--uri sqlite:///runs/mlflow.db] [--out runs/ui_check]

Without ``--uri`` it first runs a small synthetic sweep into a temporary store. It starts
``mltc ui`` on 127.0.0.1 (a free port), renders the experiment page with Debian's ``chromium``
(``apt-get install chromium``), checks that the runs table lists the sweep and all its runs, saves a
screenshot and logs it as an artifact of the sweep's parent run. Exit status 0 when the page lists the runs.
"""
from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("ui_check: no chromium on PATH; install it with `apt-get install -y chromium`.")


def _tree(pid):
    """Processes under ``pid`` (itself included) and their resident memory in MB."""
    import psutil

    root = psutil.Process(pid)
    procs = [root, *root.children(recursive=True)]
    rss = 0
    for p in procs:
        try:
            rss += p.memory_info().rss
        except psutil.Error:
            pass
    return len(procs), rss / 2**20


def _cpu(pid) -> float:
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _server_left(port) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
            return True
    except OSError:
        return False


def render(browser, url, screenshot: Path, budget_ms=20000) -> str:
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--hide-scrollbars", f"--virtual-time-budget={budget_ms}", "--window-size=1500,950"]
    subprocess.run([*common, f"--screenshot={screenshot}", url], capture_output=True, timeout=180, check=False)
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    return dom.stdout


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--uri", help="store with a finished sweep (default: run a small one into a temporary store)")
    p.add_argument("--out", default="runs/ui_check", help="where the screenshot goes")
    a = p.parse_args(argv)
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    browser = chromium()
    tmp = Path(tempfile.mkdtemp(prefix="mltc-ui-"))
    env = dict(os.environ, MLTC_RUNS_DIR=str(tmp / "runs"))
    uri = a.uri
    if uri is None:
        uri = f"sqlite:///{tmp / 'store.db'}"
        sweep = subprocess.run([sys.executable, "-m", "mltc.cli", "run", "-m", "dataset.n_docs=400",
                                "dataset.n_labels=6", f"tracking.uri={uri}", "strategy=none,ml_ros"],
                               cwd=tmp, env=env, capture_output=True, text=True)
        if sweep.returncode != 0:
            print(sweep.stderr[-3000:], file=sys.stderr)
            return 1
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    parents = [r for e in client.search_experiments() for r in client.search_runs(
        [e.experiment_id], filter_string="tags.`mltc.role` = 'sweep' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1)]
    if not parents:
        print("ui_check: the store has no finished sweep; run `mltc run -m ...` first.", file=sys.stderr)
        return 1
    parent = max(parents, key=lambda r: r.info.start_time)
    exp_id = parent.info.experiment_id
    children = client.search_runs([exp_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")

    port = free_port()
    log = open(out / "ui.log", "w")
    t0 = time.monotonic()
    ui = subprocess.Popen([sys.executable, "-m", "mltc.cli", "ui", "--port", str(port), "--uri", uri], env=env,
                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    stop_s = None
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/", timeout=2) as page:
                    page.read()
                break
            except OSError:
                if ui.poll() is not None or time.monotonic() > deadline:
                    print(f"ui_check: `mltc ui` did not start; see {out / 'ui.log'}", file=sys.stderr)
                    return 1
                time.sleep(0.2)
        first_page_s = time.monotonic() - t0
        cpu_s = _cpu(ui.pid)  # CPU seconds to the first page: what an idle machine's wait would be
        shot = out / "experiment_page.png"
        dom = render(browser, f"{url}/#/experiments/{exp_id}/runs", shot)
        n_procs, rss_mb = _tree(ui.pid)
        # Ctrl-C in a terminal: SIGINT to the foreground process group (mltc ui and what it started there)
        t = time.monotonic()
        os.killpg(ui.pid, signal.SIGINT)
        try:
            ui.wait(timeout=30)
            stop_s = time.monotonic() - t
        except subprocess.TimeoutExpired:
            pass
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait(timeout=30)
        log.close()
    left = _server_left(port)
    warnings = (out / "ui.log").read_text().count("DeprecationWarning")
    print(f"first page {first_page_s:.1f}s ({cpu_s:.1f} CPU s); {n_procs} processes, {rss_mb:.0f} MB resident; Ctrl-C stopped it in "
          f"{'%.1fs' % stop_s if stop_s is not None else 'NOT within 30 s'}"
          f"{'' if not left else ' but the server still answers'}; {warnings} deprecation warnings in the log")
    (out / "experiment_page.html").write_text(dom)
    # the runs table nests children under their (collapsed) parent: the parent's row and the count of all
    # runs (parent + children) are what the page shows without clicking
    expected = f"{len(children) + 1} matching runs"
    text = html.unescape(re.sub(r"<[^>]+>", "", dom))
    found = {"parent run row": parent.info.run_name in text, expected: expected in text}
    ok = bool(children) and all(found.values()) and shot.is_file()
    print(f"experiment {exp_id} ({len(children)} runs under sweep {parent.info.run_name!r}): "
          + ", ".join(f"{k}: {'found' if v else 'MISSING'}" for k, v in found.items()) + f"; screenshot {shot}")
    if shot.is_file():
        client.log_artifact(parent.info.run_id, str(shot), artifact_path="ui_check")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
