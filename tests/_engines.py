"""Real engines on 127.0.0.1 for the `distributed` tests: PostgreSQL, an MLflow server on it, a Ray cluster.

Each starter runs the commands docs/team.md gives (initdb + pg_ctl, ``mlflow server``, ``ray start``),
on a free port, in a temporary directory, and stops what it started. Where an engine is not installed
or cannot start, :class:`EngineUnavailable` says why; the tests turn that into a skip with the reason.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

__all__ = ["EngineUnavailable", "free_port", "wait_http", "stop_group", "postgres", "mlflow_server", "ray_cluster",
           "pg_bindir"]

PY = sys.executable
BIN = Path(PY).parent


class EngineUnavailable(RuntimeError):
    """An engine that is not installed, or did not start here (the message says which and how to fix it)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bindir() -> Path:
    """Where PostgreSQL's server programs are: ``$PG_BINDIR``, the PATH, or Debian's /usr/lib/postgresql/N/bin."""
    env = os.environ.get("PG_BINDIR")
    cands = [Path(env)] if env else []
    if shutil.which("initdb"):
        cands.append(Path(shutil.which("initdb")).resolve().parent)
    cands += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for c in cands:
        if all((c / p).is_file() for p in ("initdb", "pg_ctl", "createdb")):
            return c
    raise EngineUnavailable("PostgreSQL is not installed (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin); "
                            "install it with `apt-get install -y postgresql` (or set PG_BINDIR)")


def _pg_user():
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user (or `nobody`)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise EngineUnavailable("running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


def _run(cmd, user=None, **kw):
    if user is not None:
        kw.update(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


@contextlib.contextmanager
def postgres(databases=("mlflow", "optuna")):
    """Start a throw-away PostgreSQL on 127.0.0.1 (free port); yields ``{name: url}`` for each database.

    A new cluster in a temporary directory (``initdb``), trust authentication for the user ``mltc``
    on 127.0.0.1 only, started with ``pg_ctl`` and stopped (``-m immediate``) at the end.
    """
    bindir = pg_bindir()
    user = _pg_user()
    # not under pytest's tmp_path: as root that is a 0700 directory the postgres user cannot enter
    root = Path(tempfile.mkdtemp(prefix="mltc-pg-"))
    data = root / "data"
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    port = free_port()
    started = False
    try:
        r = _run([bindir / "initdb", "-D", data, "-U", "mltc", "--auth=trust", "-E", "UTF8", "--no-sync"], user=user)
        if r.returncode:
            raise EngineUnavailable(f"initdb failed: {(r.stdout + r.stderr)[-1500:]}")
        opts = f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections=200"
        r = _run([bindir / "pg_ctl", "-D", data, "-l", root / "server.log", "-o", opts, "-w", "-t", "60", "start"],
                 user=user)
        if r.returncode:
            log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
            raise EngineUnavailable(f"PostgreSQL did not start: {(r.stdout + r.stderr + log)[-1500:]}")
        started = True
        urls = {}
        for db in databases:
            r = _run([bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "mltc", db], user=user)
            if r.returncode:
                raise EngineUnavailable(f"createdb {db} failed: {(r.stdout + r.stderr)[-1500:]}")
            urls[db] = f"postgresql://mltc@127.0.0.1:{port}/{db}"
        yield urls
    finally:
        if started:
            _run([bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"], user=user)
        shutil.rmtree(root, ignore_errors=True)


def wait_http(url, proc, log_path, what, timeout=120):
    """Wait until ``url`` answers 200; :class:`EngineUnavailable` with the log's tail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise EngineUnavailable(f"{what} did not start:\n{Path(log_path).read_text()[-3000:]}")
        time.sleep(0.3)


def stop_group(proc, timeout=20):
    """SIGTERM ``proc``'s process group (a server and the workers it forks), SIGKILL after ``timeout``."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def mlflow_server(backend_uri, workdir, workers=2):
    """``mlflow server`` on 127.0.0.1 (free port) on ``backend_uri``; yields its http URL."""
    workdir = Path(workdir)
    port = free_port()
    cmd = [PY, "-m", "mlflow", "server", "--backend-store-uri", backend_uri,
           "--artifacts-destination", str(workdir / "server-artifacts"), "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers),
           "--uvicorn-opts", "--timeout-keep-alive 30"]
    log_path = workdir / "mlflow-server.log"
    with open(log_path, "w") as log:
        # its own process group, so stopping it also stops the web workers it forks
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", proc, log_path, "mlflow server")
        yield url
    finally:
        stop_group(proc)


def _ray_bin() -> Path:
    ray = BIN / "ray"
    if not ray.is_file():
        try:
            import ray as _  # noqa: F401
        except ImportError:
            raise EngineUnavailable("Ray is not installed: `pip install -e '.[ray]'`") from None
        raise EngineUnavailable(f"the `ray` command is not next to {PY}")
    return ray


class RayCluster:
    """A local Ray cluster: a head and worker nodes, each started with ``ray start`` and its own CPUs.

    Every process of the cluster names its temporary directory on its command line: that is how
    :meth:`stop` finds (and ends) exactly these processes, not another Ray on the machine.
    """

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        # token authentication, with this cluster's own token (not ~/.ray/auth_token): every node and every
        # driver of the cluster needs these two variables (:attr:`client_env`)
        token = root / "auth_token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        self.client_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
        self.env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_DISABLE_DOCKER_CPU_WARNING="1",
                        **self.client_env)
        self.workers: list = []  # the pids of each worker node

    def _start(self, args):
        # free ports for everything that has a fixed default (10001, 8265, ...): several clusters may share a host
        ports = ["--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                 "--metrics-export-port", "--runtime-env-agent-port", "--node-manager-port", "--object-manager-port"]
        cmd = [str(_ray_bin()), "start", *args, "--node-ip-address=127.0.0.1", "--disable-usage-stats",
               "--object-store-memory=100000000", *(f"{p}={free_port()}" for p in ports)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=180)
        if r.returncode:
            raise EngineUnavailable(f"`{' '.join(cmd[1:])}` failed: {(r.stdout + r.stderr)[-2000:]}")

    def start_head(self, num_cpus=1):
        self._start(["--head", f"--port={self.port}", f"--num-cpus={num_cpus}", f"--temp-dir={self.root}",
                     "--include-dashboard=false"])

    def add_worker(self, num_cpus=1):
        """Start a worker node with ``num_cpus`` CPUs; returns the pids of its node processes."""
        before = self.pids()
        self._start([f"--address={self.address}", f"--num-cpus={num_cpus}"])
        pids = self.pids() - before
        self.workers.append(pids)
        return pids

    def kill_worker(self, pids):
        """Kill a worker node at once (SIGKILL): a machine that died, not one that left."""
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def pids(self) -> set:
        """Processes of this cluster running now (read from /proc)."""
        key = str(self.root).encode()
        out = set()
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if key in (d / "cmdline").read_bytes():
                        out.add(int(d.name))
                except OSError:
                    continue
        return out

    def stop(self):
        pids = self.pids()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while (pids := pids & self.pids()) and time.monotonic() < deadline:
                time.sleep(0.2)
            if not pids:
                return


@contextlib.contextmanager
def ray_cluster(head_cpus=1):
    """A Ray head on 127.0.0.1 (free port) in a temporary directory; add worker nodes with ``add_worker``."""
    _ray_bin()
    # Ray's socket paths must stay short (AF_UNIX limit): a short directory under /tmp, not pytest's tmp_path
    root = Path(tempfile.mkdtemp(prefix="mr-", dir="/tmp"))
    cluster = RayCluster(root)
    try:
        cluster.start_head(head_cpus)
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 in front of a real server that resets the connection of the first
    ``drops`` requests whose head starts with ``request_line`` (e.g. ``b"POST /api/2.0/mlflow/logged-models "``),
    as a loaded server does when it closes an idle keep-alive connection as a request arrives.
    Everything else is forwarded unchanged, both ways. ``dropped`` counts the resets.
    """

    def __init__(self, upstream_port: int, request_line: bytes, drops: int = 1):
        import threading

        self.upstream_port, self.request_line, self.left, self.dropped = upstream_port, request_line, drops, 0
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self._listener.close()

    def _accept(self):
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _take_drop(self, chunk: bytes) -> bool:
        if not chunk.startswith(self.request_line):
            return False
        with self._lock:
            if self.left <= 0:
                return False
            self.left -= 1
            self.dropped += 1
            return True

    def _pump(self, src, dst, from_client):
        import struct

        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                if from_client and self._take_drop(chunk):
                    # SO_LINGER 0: close() sends a reset, not a clean end of stream
                    src.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    break
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()
