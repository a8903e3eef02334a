"""Reuters-21578 (Distribution 1.0), ModApte split, read from the raw SGML files."""
from __future__ import annotations

import html
import logging
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np

from mltc.data.base import DataError, Dataset
from mltc.data.download import RemoteFile, cache_dir, fetch_archive, mirror_url, require_files, sha256sum
from mltc.data.validate import check_dataset

log = logging.getLogger(__name__)

__all__ = ["load_reuters21578", "REUTERS_ARCHIVE", "SGML_FILES"]

# The archive's own checksum is not pinned (the UCI server has re-packed it before); its
# members are checked instead.
REUTERS_ARCHIVE = RemoteFile("reuters21578.tar.gz",
                             "https://kdd.ics.uci.edu/databases/reuters21578/reuters21578.tar.gz", None)
SGML_FILES = {
    "reut2-000.sgm": "03c43893e06d7abb569f1a25134af3fc0eb0fac09f0e811a04713e87de42591d",
    "reut2-001.sgm": "1528e7e82d110d88d0234eb9619eadb7f9fd805711971df05975b92277dfdf4d",
    "reut2-002.sgm": "99f18068d0518952987dedd78c622e5c2a584e357d264d3754696c815f3e6628",
    "reut2-003.sgm": "78a3a8d7e04bc9d42c4614d5d5c60a4293dbe3f708df6fb5a71d9ef31f4b3fa3",
    "reut2-004.sgm": "726342c19a65873330b412378cd6a3f0d512035f5223146ddd60930c62eb6ff0",
    "reut2-005.sgm": "d09de619b6dd2d047d5124681f6df90550abaf592020d1c1ce338ae9b91522e7",
    "reut2-006.sgm": "b5535c0d66b01f4976f84621a4a795afbc00d2c4bd0a1b7ae426df6630fb361d",
    "reut2-007.sgm": "aa706007ec84a03537a3921ca976d60e11b3f99e4b9e9b2d5c81dd384d2c2062",
    "reut2-008.sgm": "a3994583694a00b7c744097c1d7eabfcf90f2e6650cc21663e46828035a336cb",
    "reut2-009.sgm": "29995f606dd1a9bdf907eacc9d879846c716860d9d9141676979474aaea39c7d",
    "reut2-010.sgm": "996df6008089bd09fa5b28a4d2eb0ee5f7b9d4601cde566fed3926ac82960fa3",
    "reut2-011.sgm": "d3a2782015247d9c2bffb8926267827fdd449c70d619435ef01a25a1c56a53ca",
    "reut2-012.sgm": "da31035d483851f2aebce5b66d779e5e2c0ac9dcfe098596c6d544e81c5604ab",
    "reut2-013.sgm": "8f7700bc0455fac3fcc12377ced4807b7df8aba1f21ecad059b9cc2b1cf0b8be",
    "reut2-014.sgm": "ef936bd3e0f36cf722afa9a6957563549775af32e9e28b4f539c8737ceda83ab",
    "reut2-015.sgm": "6d3bcec73eff871b8a5403588af814c4e50a0de6bc25707480522ab836f74026",
    "reut2-016.sgm": "be2f03a185fff70131f3b4fdbd6229b7ee2be077eba9691eaa597c8cfbda8812",
    "reut2-017.sgm": "f370e610b4b1342e41a98e0c426a08541044bd1d7e539674f32372a6060b73b5",
    "reut2-018.sgm": "a5f971bf25448e915781962309e669359a35fbcaf3017a806eca0590897f209a",
    "reut2-019.sgm": "d3b07097fba2633d130b4914aceba671645985248943ce9e39c289315339dffb",
    "reut2-020.sgm": "f6ad1b724125c202566c63b35ea0b5ee23881f8b7ed47a32829d5af05d8e860d",
    "reut2-021.sgm": "3f5196d32869723c9042aa5756805b4e90360f1f45ea17f4594fa0e2b3630b18",
}

# The files are SGML, not XML (unescaped '&', unclosed entities), so each document is cut out by regex.
_DOC = re.compile(r"<REUTERS\b([^>]*)>(.*?)</REUTERS>", re.S)
_ATTR = re.compile(r'(\w+)="([^"]*)"')
_TOPICS = re.compile(r"<TOPICS>(.*?)</TOPICS>", re.S)
_D = re.compile(r"<D>(.*?)</D>", re.S)
_TEXT = re.compile(r"<TEXT\b[^>]*>(.*?)</TEXT>", re.S)
_TITLE = re.compile(r"<TITLE>(.*?)</TITLE>", re.S)
_BODY = re.compile(r"<BODY>(.*?)</BODY>", re.S)
_TAG = re.compile(r"<[^>]+>")
# &#2; / &#3; (start/end of text) and similar wire-service control codes are not text
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def load_reuters21578(data_dir: str | os.PathLike | None = None, download: bool = True,
                      base_url: str | None = None) -> Dataset:
    """Load Reuters-21578 newswire with the ModApte split (90 topics, 7,770 train / 3,019 test).

    ModApte (Apté et al. 1994; Lewis' Reuters-21578 README): documents with
    ``LEWISSPLIT="TRAIN"`` or ``"TEST"`` and ``TOPICS="YES"``; topics kept if they
    have at least one training and one test document; documents kept if they
    have at least one kept topic. Text is the title, a newline and the body
    (the title alone for briefs; the raw text where there is neither).

    Parameters
    ----------
    data_dir : path, optional
        Folder with ``reut2-000.sgm`` ... ``reut2-021.sgm``; read as is, never
        downloaded to. ``None`` uses the cache (``$MLTC_DATA_DIR/reuters21578``),
        downloading and unpacking the UCI KDD archive on first use.
    download : bool, default=True
        Whether a missing cache may be filled from the internet.
    base_url : str, optional
        Mirror root holding ``reuters21578/reuters21578.tar.gz``; defaults to
        ``$MLTC_DATA_URL``, else the UCI KDD archive.

    Returns
    -------
    Dataset
        Documents in file order; ``splits`` has ``"train"`` and ``"test"`` (no
        official validation set); label names sorted alphabetically.
    """
    names = sorted(SGML_FILES)
    if data_dir is None:
        directory = cache_dir("reuters21578")
        paths = fetch_archive(REUTERS_ARCHIVE, SGML_FILES, directory,
                              base_url=mirror_url("reuters21578", base_url), download=download)
    else:
        directory = Path(data_dir).expanduser()
        paths = require_files(directory, names, what="reuters21578")
        changed = [n for n in names if sha256sum(paths[n]) != SGML_FILES[n]]
        if changed:
            log.warning("reuters21578: %s differ from Distribution 1.0; results may not compare with "
                        "published numbers.", ", ".join(changed))

    docs = []
    for name in names:
        # latin-1: the files are 8-bit and a few bytes are not valid UTF-8
        found = parse_sgml(paths[name].read_text(encoding="latin-1"))
        if not found:
            raise DataError(f"reuters21578: {paths[name]} holds no <REUTERS> documents; is it a Reuters-21578 "
                            "SGML file? Delete it to download the original release.")
        docs.extend(found)
    return _modapte(docs, directory)


def parse_sgml(sgml: str) -> list[dict]:
    """Split one ``reut2-*.sgm`` file into documents.

    Returns
    -------
    list of dict
        Per document: ``newid`` (int), ``lewissplit``, ``has_topics`` (the
        ``TOPICS`` attribute is ``"YES"``), ``topics`` (list of str) and ``text``.
    """
    docs = []
    for attrs, block in _DOC.findall(sgml):
        attr = dict(_ATTR.findall(attrs))
        topics = _TOPICS.search(block)
        docs.append({
            "newid": int(attr.get("NEWID", -1)),
            "lewissplit": attr.get("LEWISSPLIT", ""),
            "has_topics": attr.get("TOPICS", "") == "YES",
            "topics": [t.strip() for t in _D.findall(topics.group(1))] if topics else [],
            "text": _text(block),
        })
    return docs


def _text(block: str) -> str:
    text = _TEXT.search(block)
    inner = text.group(1) if text else ""
    title, body = _TITLE.search(inner), _BODY.search(inner)
    if title is None and body is None:
        parts = [_TAG.sub(" ", inner)]
    else:
        parts = [m.group(1) for m in (title, body) if m is not None]
    parts = [_CONTROL.sub("", html.unescape(p)).strip() for p in parts]
    return "\n".join(p for p in parts if p)


def _modapte(docs: list[dict], directory: Path) -> Dataset:
    split_of = {"TRAIN": "train", "TEST": "test"}
    docs = [d for d in docs if d["has_topics"] and d["lewissplit"] in split_of and d["topics"]]
    counts = {s: Counter(t for d in docs if split_of[d["lewissplit"]] == s for t in set(d["topics"]))
              for s in ("train", "test")}
    label_names = sorted(set(counts["train"]) & set(counts["test"]))
    column = {t: j for j, t in enumerate(label_names)}
    docs = [d for d in docs if any(t in column for t in d["topics"])]
    if not docs:
        raise DataError(f"reuters21578: no ModApte documents (TOPICS=\"YES\", LEWISSPLIT TRAIN/TEST, a topic seen "
                        f"in both parts) in {directory}.")
    Y = np.zeros((len(docs), len(label_names)), dtype=np.int8)
    for i, d in enumerate(docs):
        Y[i, [column[t] for t in d["topics"] if t in column]] = 1
    part = np.array([split_of[d["lewissplit"]] for d in docs])
    splits = {s: np.flatnonzero(part == s) for s in ("train", "test")}
    ds = Dataset(name="reuters21578", texts=[d["text"] for d in docs], Y=Y, label_names=label_names,
                 splits=splits,
                 description="Reuters-21578 ModApte: newswire, topic categories with train and test documents",
                 meta={"data_dir": str(directory)}, ids=[str(d["newid"]) for d in docs])
    return check_dataset(ds, train_idx=splits["train"])
