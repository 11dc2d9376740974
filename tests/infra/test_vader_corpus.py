"""VADER's rated corpora: read from the cache as the sdist lays them out; the demo survives
without them."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_shared import devstack
from infra.local import run, vader_corpus


def test_the_locked_version_is_the_one_uv_lock_pins() -> None:
    version, digest = vader_corpus.locked_sdist()
    assert version.count(".") == 2
    assert digest is not None and len(digest) == 64


def test_rated_texts_are_read_from_the_cache_without_fetching_again(tmp_path: Path) -> None:
    version, _ = vader_corpus.locked_sdist()
    folder = tmp_path / f"vaderSentiment-{version}"
    folder.mkdir()
    (folder / "tweets_GroundTruth.txt").write_bytes(
        b"1\t2.726315789\tSo lucky.\r\n2\t-2.154639175\tDie die die\r\nbroken line\r\n"
    )
    (folder / "amazonReviewSnippets_GroundTruth.txt").write_bytes(b"1_1\t-0.9\tno picture.\r\n")
    assert vader_corpus.tweets(tmp_path) == [
        vader_corpus.Rated("1", 2.726315789, "So lucky."),
        vader_corpus.Rated("2", -2.154639175, "Die die die"),
    ]
    assert vader_corpus.amazon_snippets(tmp_path) == [
        vader_corpus.Rated("1_1", -0.9, "no picture.")
    ]


async def test_the_demo_starts_without_conversations_when_the_corpus_cannot_be_fetched(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def unavailable() -> list[vader_corpus.Rated]:
        raise vader_corpus.CorpusUnavailable("offline")

    monkeypatch.setattr(vader_corpus, "tweets", unavailable)
    # No service runs on these ports: nothing may be called once the corpus is missing.
    stack = devstack.Stack(ports=dict.fromkeys(("gateway", *devstack.SUBGRAPHS), 1))
    await run.seed_demo_conversations(stack, "token", [])
    assert "no demo conversations" in capsys.readouterr().err
