"""Download cache: fetched over a local HTTP server, checked by sha256, reused, and clear when it cannot work."""
from __future__ import annotations

import io
import sys
import tarfile

import numpy as np
import pytest

from mltc.data.base import DataError
from mltc.data.download import RemoteFile, cache_dir, fetch, fetch_archive, mirror_url


from _serve import dead_url, serve, sha  # noqa: E402


@pytest.fixture
def published(tmp_path):
    """Two files of random bytes in a served folder, with their true checksums."""
    rng = np.random.default_rng(0)
    root = tmp_path / "server"
    root.mkdir()
    contents = {"a.bin": rng.bytes(3000), "b.txt": b"alpha\nbeta\n"}
    for name, data in contents.items():
        (root / name).write_bytes(data)
    return root, contents


def _remote(contents, url="https://example.invalid/data"):
    return [RemoteFile(name, f"{url}/{name}", sha(data)) for name, data in contents.items()]


def test_cache_dir_follows_mltc_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTC_DATA_DIR", str(tmp_path / "somewhere"))
    assert cache_dir("goemotions") == tmp_path / "somewhere" / "goemotions"
    assert cache_dir() == tmp_path / "somewhere"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG cache layout is Linux's")
def test_cache_dir_defaults_to_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("MLTC_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("reuters21578") == tmp_path / "xdg" / "mltc" / "reuters21578"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir("x") == tmp_path / "home" / ".cache" / "mltc" / "x"


def test_mirror_url_argument_wins_over_environment(monkeypatch):
    monkeypatch.delenv("MLTC_DATA_URL", raising=False)
    assert mirror_url("goemotions") is None
    monkeypatch.setenv("MLTC_DATA_URL", "http://env.example/m/")
    assert mirror_url("goemotions") == "http://env.example/m/goemotions"
    assert mirror_url("goemotions", "http://arg.example") == "http://arg.example/goemotions"


def test_fetch_downloads_checks_and_then_reuses_the_cache(published, tmp_path):
    root, contents = published
    dest = tmp_path / "cache" / "ds"
    with serve(root) as url:
        paths = fetch(_remote(contents), dest, base_url=url)
    assert {n: p.read_bytes() for n, p in paths.items()} == contents
    assert sorted(p.name for p in dest.iterdir()) == sorted(contents)  # no temporary files left
    stamps = {n: (p.stat().st_ino, p.stat().st_mtime_ns) for n, p in paths.items()}

    # server gone: the verified cache must be enough, and must not be rewritten
    again = fetch(_remote(contents), dest, base_url=dead_url())
    assert again == paths
    assert {n: (p.stat().st_ino, p.stat().st_mtime_ns) for n, p in again.items()} == stamps


def test_fetch_uses_each_files_own_url_and_local_name(published, tmp_path):
    # how GoEmotions' emotions.txt becomes labels.txt
    root, contents = published
    with serve(root) as url:
        paths = fetch([RemoteFile("labels.txt", f"{url}/b.txt", sha(contents["b.txt"]))], tmp_path / "d")
    assert paths["labels.txt"].read_bytes() == contents["b.txt"]


def test_downloaded_file_with_wrong_checksum_is_rejected_and_not_kept(published, tmp_path):
    root, contents = published
    files = _remote(contents)
    files[0] = RemoteFile(files[0].name, files[0].url, sha(b"another release"))
    dest = tmp_path / "d"
    with serve(root) as url, pytest.raises(DataError, match=r"sha256 .* expected") as err:
        fetch(files, dest, base_url=url)
    assert sha(contents["a.bin"]) in str(err.value)
    assert list(dest.iterdir()) == []


def test_cached_file_with_wrong_checksum_is_an_error_suggesting_deletion(published, tmp_path):
    root, contents = published
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "a.bin").write_bytes(b"truncated")
    with serve(root) as url, pytest.raises(DataError, match="Delete the file") as err:
        fetch(_remote(contents), dest, base_url=url)
    assert str(dest / "a.bin") in str(err.value)
    assert (dest / "a.bin").read_bytes() == b"truncated"  # never silently replaced


def test_offline_without_cache_names_files_directory_and_fixes(published, tmp_path):
    _, contents = published
    dest = tmp_path / "cache" / "ds"
    with pytest.raises(DataError) as err:
        fetch(_remote(contents), dest, base_url=dead_url())
    msg = str(err.value)
    for needle in ("a.bin", "b.txt", str(dest), "MLTC_DATA_DIR", "dataset.data_dir"):
        assert needle in msg
    assert not dest.exists() or not any(dest.iterdir())


def test_missing_file_on_server_reports_http_status(tmp_path):
    (tmp_path / "empty").mkdir()
    with serve(tmp_path / "empty") as url, pytest.raises(DataError, match="HTTP 404"):
        fetch([RemoteFile("x.tsv", "unused", sha(b""))], tmp_path / "d", base_url=url)


def test_download_switched_off_does_not_touch_the_network(published, tmp_path):
    root, contents = published
    with serve(root) as url, pytest.raises(DataError, match="download=false"):
        fetch(_remote(contents), tmp_path / "d", base_url=url, download=False)
    assert not (tmp_path / "d").exists()


def _tarball(path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_fetch_archive_extracts_checked_members_and_reuses_them(tmp_path):
    wanted = {"one.sgm": b"<REUTERS>1</REUTERS>", "two.sgm": b"<REUTERS>2</REUTERS>"}
    served = tmp_path / "server"
    served.mkdir()
    _tarball(served / "bundle.tar.gz", {"sub/one.sgm": wanted["one.sgm"], "two.sgm": wanted["two.sgm"],
                                        "README.txt": b"not wanted"})
    archive = RemoteFile("bundle.tar.gz", "https://example.invalid/bundle.tar.gz", None)
    checksums = {n: sha(d) for n, d in wanted.items()}
    dest = tmp_path / "cache"
    with serve(served) as url:
        paths = fetch_archive(archive, checksums, dest, base_url=url)
    assert {n: p.read_bytes() for n, p in paths.items()} == wanted
    assert sorted(p.name for p in dest.iterdir()) == sorted(wanted)  # archive and extras gone, flat layout

    assert fetch_archive(archive, checksums, dest, base_url=dead_url()) == paths


def test_fetch_archive_rejects_member_with_wrong_checksum(tmp_path):
    served = tmp_path / "server"
    served.mkdir()
    _tarball(served / "bundle.tar.gz", {"one.sgm": b"changed"})
    archive = RemoteFile("bundle.tar.gz", "unused", None)
    with serve(served) as url, pytest.raises(DataError, match="one.sgm .* expected"):
        fetch_archive(archive, {"one.sgm": sha(b"original")}, tmp_path / "cache", base_url=url)
    assert list((tmp_path / "cache").iterdir()) == []


def test_fetch_archive_reports_missing_members_and_unreadable_archives(tmp_path):
    served = tmp_path / "server"
    served.mkdir()
    _tarball(served / "bundle.tar.gz", {"one.sgm": b"1"})
    (served / "broken.tar.gz").write_bytes(b"<html>proxy error</html>")
    with serve(served) as url:
        with pytest.raises(DataError, match="lacks 1 expected files: two.sgm"):
            fetch_archive(RemoteFile("bundle.tar.gz", "unused", None), {"one.sgm": sha(b"1"), "two.sgm": sha(b"2")},
                          tmp_path / "c1", base_url=url)
        with pytest.raises(DataError, match="not a readable tar archive"):
            fetch_archive(RemoteFile("broken.tar.gz", "unused", None), {"one.sgm": sha(b"1")},
                          tmp_path / "c2", base_url=url)
    assert list((tmp_path / "c2").iterdir()) == []
