"""Download-on-first-use for public data sets: a cache directory, sha256 checks, atomic writes.

Files are cached under ``$MLTC_DATA_DIR/<data set>/`` (default: the user cache
directory, ``~/.cache/mltc`` on Linux). A file whose checksum matches is never
downloaded again. Downloads go to a temporary file in the same directory and are
renamed into place only once their checksum is verified, so an interrupted or
concurrent download never leaves a half-written file under the final name.

A mirror (``MLTC_DATA_URL`` or a loader's ``base_url``) is laid out like the cache:
``<mirror>/<data set>/<file name>``.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mltc.data.base import DataError

log = logging.getLogger(__name__)

__all__ = ["RemoteFile", "cache_dir", "mirror_url", "fetch", "fetch_archive", "sha256sum", "require_files"]

DATA_DIR_ENV = "MLTC_DATA_DIR"
DATA_URL_ENV = "MLTC_DATA_URL"
_TIMEOUT_S = 60
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One published file.

    Parameters
    ----------
    name : str
        File name in the cache directory (and on a mirror).
    url : str
        Where the authors publish it.
    sha256 : str or None
        Expected hex digest; ``None`` where it cannot be known in advance (an
        archive whose members are checked instead, see :func:`fetch_archive`).
    """

    name: str
    url: str
    sha256: str | None


def cache_dir(dataset: str | None = None) -> Path:
    """Directory where downloaded data sets live: ``$MLTC_DATA_DIR`` or the user cache dir."""
    root = os.environ.get(DATA_DIR_ENV)
    if root:
        base = Path(root).expanduser()
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches" / "mltc"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "mltc" / "Cache"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mltc"
    return base / dataset if dataset else base


def mirror_url(dataset: str, base_url: str | None = None) -> str | None:
    """URL of ``dataset``'s directory on a mirror (``base_url`` or ``$MLTC_DATA_URL``), or ``None``."""
    root = base_url or os.environ.get(DATA_URL_ENV)
    return f"{root.rstrip('/')}/{dataset}" if root else None


def sha256sum(path: str | os.PathLike) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _offline_hint(names: Iterable[str], dest_dir: Path) -> str:
    names = list(names)
    listed = ", ".join(names) if len(names) <= 6 else f"{', '.join(names[:2])}, ..., {names[-1]} ({len(names)} files)"
    return (f"Expected files: {listed} in {dest_dir}. If this machine is offline, copy them there "
            f"(or to <dir>/{dest_dir.name}/ and set {DATA_DIR_ENV}=<dir>), or read them from where they are "
            f"with dataset.data_dir=/path/to/{dest_dir.name}.")


def _verify_cached(path: Path, sha256: str) -> bool:
    """True if ``path`` exists and matches; a mismatch is an error, never silently replaced."""
    if not path.is_file():
        return False
    actual = sha256sum(path)
    if actual != sha256:
        raise DataError(f"{path} is corrupt or not the expected version: sha256 {actual}, expected {sha256}. "
                        f"Delete the file and run again to download it afresh.")
    return True


def _download(url: str, dest: Path, sha256: str | None, *, hint: str) -> None:
    """Stream ``url`` to a temporary file next to ``dest``, check it, then rename it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s -> %s", url, dest)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            raise DataError(f"could not download {url}: HTTP {exc.code} {exc.reason}. {hint}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DataError(f"could not download {url} ({reason}). {hint}") from None
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256:
            raise DataError(f"the file downloaded from {url} has sha256 {actual}, expected {sha256}: the server "
                            f"sent a different file (a changed release or a broken proxy). Nothing was saved; "
                            f"check the URL or the mirror ({DATA_URL_ENV}).")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _source(remote: RemoteFile, base: str | None) -> str:
    return f"{base.rstrip('/')}/{remote.name}" if base else remote.url


def fetch(files: list[RemoteFile], dest_dir: str | os.PathLike, *, base_url: str | None = None,
          download: bool = True) -> dict[str, Path]:
    """Make sure every file is in ``dest_dir`` with the right checksum, downloading what is missing.

    Parameters
    ----------
    files : list of RemoteFile
    dest_dir : path
        The data set's cache directory (see :func:`cache_dir`).
    base_url : str, optional
        Directory URL to fetch ``<base_url>/<name>`` from instead of each file's ``url``.
    download : bool, default=True
        If false, a missing file is an error instead of a download.

    Returns
    -------
    dict of str to Path
        Local path of each file, by name.
    """
    dest_dir = Path(dest_dir)
    hint = _offline_hint([f.name for f in files], dest_dir)
    paths = {}
    for remote in files:
        path = dest_dir / remote.name
        if remote.sha256 is None or not _verify_cached(path, remote.sha256):
            if not download:
                raise DataError(f"{path} is missing and downloading is switched off (download=false). {hint}")
            _download(_source(remote, base_url), path, remote.sha256, hint=hint)
        paths[remote.name] = path
    return paths


def fetch_archive(archive: RemoteFile, members: Mapping[str, str], dest_dir: str | os.PathLike, *,
                  base_url: str | None = None, download: bool = True) -> dict[str, Path]:
    """Make sure the archive's ``members`` are in ``dest_dir``, downloading and extracting it if needed.

    Members are verified against their sha256 after extraction (the archive's own
    checksum is not needed); the archive itself is not kept.
    Members are matched by base name and written flat into ``dest_dir``, so a member
    path cannot escape it.

    Parameters
    ----------
    archive : RemoteFile
        A ``.tar.gz`` (any compression :mod:`tarfile` reads).
    members : mapping of str to str
        Base name of each wanted member -> its sha256.
    dest_dir : path
    base_url : str, optional
        Directory URL to fetch ``<base_url>/<archive.name>`` from.
    download : bool, default=True
        If false, a missing member is an error instead of a download.

    Returns
    -------
    dict of str to Path
        Local path of each member, by name.
    """
    dest_dir = Path(dest_dir)
    paths = {name: dest_dir / name for name in members}
    if all(_verify_cached(paths[name], sha) for name, sha in members.items()):
        return paths
    hint = _offline_hint(list(members), dest_dir)
    if not download:
        missing = [name for name, path in paths.items() if not path.is_file()]
        raise DataError(f"{len(missing)} files are missing from {dest_dir} and downloading is switched off "
                        f"(download=false). {hint}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    # a private folder per call: parallel jobs fetching at once must not delete each other's archive
    workdir = Path(tempfile.mkdtemp(dir=dest_dir, prefix=".download-"))
    try:
        archive_path = workdir / archive.name
        _download(_source(archive, base_url), archive_path, archive.sha256, hint=hint)
        _extract(archive_path, members, dest_dir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return paths


def _extract(archive_path: Path, members: Mapping[str, str], dest_dir: Path) -> None:
    found = set()
    try:
        with tarfile.open(archive_path) as tar:
            for info in tar:
                name = os.path.basename(info.name)
                if not info.isfile() or name not in members:
                    continue
                fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{name}.", suffix=".part")
                tmp = Path(tmp_name)
                try:
                    with os.fdopen(fd, "wb") as out, tar.extractfile(info) as src:
                        shutil.copyfileobj(src, out, _CHUNK)
                    actual = sha256sum(tmp)
                    if actual != members[name]:
                        raise DataError(f"{name} in {archive_path.name} has sha256 {actual}, expected "
                                        f"{members[name]}: the archive is not the expected release.")
                    os.replace(tmp, dest_dir / name)
                finally:
                    tmp.unlink(missing_ok=True)
                found.add(name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"the file downloaded as {archive_path.name} is not a readable tar archive ({exc}); "
                        "check the URL or the mirror, then run again.") from None
    missing = sorted(set(members) - found)
    if missing:
        raise DataError(f"{archive_path.name} lacks {len(missing)} expected files: {', '.join(missing)}.")


def require_files(data_dir: str | os.PathLike, names: Iterable[str], *, what: str) -> dict[str, Path]:
    """Paths of ``names`` in a user-given ``data_dir``; a clear error lists any that are missing."""
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise DataError(f"{what}: data_dir {data_dir} (resolved to {data_dir.resolve()}) is not a directory. "
                        "Point dataset.data_dir at the folder holding the files, or leave it null to use the "
                        "download cache.")
    names = list(names)
    missing = [n for n in names if not (data_dir / n).is_file()]
    if missing:
        raise DataError(f"{what}: {data_dir} lacks {len(missing)} of the expected files: {', '.join(missing)}. "
                        "Point dataset.data_dir at the folder holding them, or leave it null to download them.")
    return {n: data_dir / n for n in names}

