"""The ``mltc`` command: ``run`` (Hydra), ``compare``, ``ui``, ``predict`` and ``promote``."""
from __future__ import annotations

import argparse
import sys

USAGE = """usage: mltc <command> [options]

commands:
  run       run one experiment, or a sweep with -m (a Hydra app: `mltc run --help`)
  compare   leaderboard of tracked runs (`mltc compare --help`)
  ui        open the MLflow UI on 127.0.0.1 against the same store
  advise    run the imbalance portfolio on a data set and recommend a configuration (`mltc advise --help`)
  predict   label texts with a logged model (`mltc predict --help`)
  promote   refit a sweep's best run (or --run <id>) on train+val and register it (`mltc promote --help`)

examples:
  mltc run                                   # synthetic data, seconds, offline
  mltc run dataset=goemotions thresholds=global
  mltc run -m strategy=none,ml_ros model=logreg,linear_svc
  mltc run experiment=reuters_huang_svm
  mltc compare --experiment goemotions
  mltc advise dataset=files dataset.path=train.csv portfolio.budget_minutes=30
"""


def main(argv=None) -> int:
    """Dispatch to a sub-command."""
    argv_given = argv
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd in _COMPLETION or (cmd == "run" and any(a in _COMPLETION for a in rest)):
        return _shell_completion([a for a in argv if a != "run"])
    if cmd == "run":
        import gc

        from mltc.app import main as run_main

        # the ~150k objects imported so far (Hydra, OmegaConf, scikit-learn, ...) live as long as the
        # process: kept out of the collector, they are not traversed again by every full collection
        # that featurizing (millions of short-lived objects) triggers
        gc.freeze()
        _skip_mode_probe(rest)
        from mltc.config_guard import install as guard_configs

        guard_configs()  # every composed config is checked before Hydra builds or runs anything in it
        if argv_given is None:
            _stop_on_sigterm()
        # Hydra reads sys.argv; the program name keeps `--help` and completion readable
        sys.argv = ["mltc run", *rest]
        try:
            run_main()
        except (KeyboardInterrupt, SystemExit) as err:
            return _stopped(err)
        from mltc.callbacks import last_summary

        summary = last_summary()
        # a sweep goes on past failed jobs, but its exit status still says that some failed
        code = 1 if summary is not None and summary.n_failed else 0
        if argv_given is None:
            _exit_now(code)
        return code
    if cmd == "compare":
        from mltc.compare import main as compare_main

        return compare_main(rest)
    if cmd == "ui":
        return _ui(rest)
    if cmd == "advise":
        from mltc.advise import main as advise_main

        return advise_main(rest)
    if cmd == "predict":
        from mltc.serving.predict import main as predict_main

        return predict_main(rest)
    if cmd == "promote":
        from mltc.serving.promote import main as promote_main

        return promote_main(rest)
    if cmd in ("--version", "-V"):
        from mltc import __version__

        print(f"mltc {__version__}")
        return 0
    print(f"mltc: unknown command {cmd!r}\n\n{USAGE}", file=sys.stderr)
    return 2


_COMPLETION = ("-sc", "--shell-completion")


def _stop_on_sigterm() -> None:
    """End a run on SIGTERM (``kill``, a scheduler's time limit) as on Ctrl-C: marked KILLED in MLflow.

    Python's default for SIGTERM is to die at once, which leaves the MLflow run RUNNING forever.
    """
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, stop)


def _stopped(err: BaseException) -> int:
    """A run or sweep stopped early (Ctrl-C, SIGTERM, a refused job config): one line, not a traceback.

    The interrupted run is already marked KILLED; a sweep's parent run is closed here with its summary.
    """
    from mltc.callbacks import abort_sweep

    interrupted = isinstance(err, KeyboardInterrupt)
    if interrupted:
        code = 143 if "SIGTERM" in str(err) else 130
    else:
        code = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    summary = abort_sweep("KILLED" if interrupted else "FAILED",
                          str(err) or "interrupted" if interrupted else "a job could not start; see the message above")
    if interrupted:
        if summary is not None:
            what = "; the sweep's parent run and its unfinished runs are marked KILLED in the tracker"
        elif getattr(err, "tracked", False):
            what = "; the run is marked KILLED in the tracker"
        else:
            what = ""
        print(f"mltc: {str(err) or 'interrupted'}{what}.", file=sys.stderr)
    if summary is not None:
        print(summary.line(), file=sys.stderr)
    return code


def _exit_now(code: int) -> None:
    """End the ``mltc`` program without the interpreter's teardown.

    By now the run is committed to the store and its tracking process has exited. Tearing
    down the interpreter (every module of scikit-learn, SciPy, pandas, Hydra, and the run's
    texts and vocabulary) took 0.4-0.8 s of a GoEmotions run. mltc's own threads are joined
    and exit handlers still run (logging flushes Hydra's log file); any other live thread
    gets the normal exit, which waits for it.
    """
    import atexit
    import os
    import threading

    loky = sys.modules.get("joblib.externals.loky.reusable_executor")
    if loky is not None and getattr(loky, "_executor", None) is not None:
        # a joblib sweep's idle workers: all they ran is committed, and stopping them now saves
        # waiting for each one's own interpreter teardown (seconds); their tracking processes
        # exit when the workers' pipes close
        loky._executor.shutdown(wait=True, kill_workers=True)
    futures = sys.modules.get("concurrent.futures.thread")
    if futures is not None and hasattr(futures, "_python_exit"):
        # idle thread pools (e.g. MLflow's artifact uploads): what the normal exit does to them first
        futures._python_exit()
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if any(not t.name.startswith("mltc-") for t in others):
        return
    for t in others:
        t.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _skip_mode_probe(args) -> None:
    """Spare Hydra a whole composition of the config just to read ``hydra.mode``.

    Hydra composes the config once to learn whether it sets ``hydra.mode`` and again to run
    (about 0.7 s each). No mltc config sets it; the probe is kept when the command line
    names it or a local config (``conf/local/``) might.
    """
    from pathlib import Path

    from mltc.app import CONF_DIR

    local = Path(CONF_DIR) / "local"
    if any("hydra.mode" in a for a in args) or (local.is_dir() and any(local.glob("*.yaml"))):
        return
    try:
        from hydra._internal.hydra import Hydra
    except ImportError:  # a Hydra without this internal: keep its behaviour
        return
    if hasattr(Hydra, "get_mode"):
        # None makes Hydra pick RUN or MULTIRUN from -m, as it does when no config sets a mode
        Hydra.get_mode = lambda self, config_name, overrides: None


def _shell_completion(args) -> int:
    """Hydra's tab completion for ``mltc run``.

    The installed script registers ``mltc`` and asks ``mltc -sc query=...``; Hydra then reads the
    command line from ``COMP_LINE``, where the ``run`` word must not be taken for an override.
    """
    import os
    import re

    from mltc.app import main as run_main

    line = os.environ.get("COMP_LINE")
    if line:
        os.environ["COMP_LINE"] = re.sub(r"^(\S*mltc)\s+run(\s|$)", r"\1\2", line)
    sys.argv = ["mltc", *args]
    run_main()
    return 0


def _ui(argv) -> int:
    from mltc.paths import runs_dir, tracking_uri

    p = argparse.ArgumentParser(prog="mltc ui", description="Open the MLflow UI against mltc's store.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--uri", default=None,
                   help="tracking store (default: as `mltc run`: conf/local, $MLFLOW_TRACKING_URI, runs/mlflow.db)")
    a = p.parse_args(argv)
    uri = tracking_uri(a.uri)
    runs_dir().mkdir(parents=True, exist_ok=True)
    print(f"MLflow UI on http://{a.host}:{a.port} (store: {uri}); Ctrl+C stops it.")
    from mltc.ui import serve

    return serve(uri, a.host, a.port)


if __name__ == "__main__":
    raise SystemExit(main())
