"""Fidelity of the platform adapters to real recorded responses (issue 14's first targets).

For every recorded response in ``tests/engagement/payloads/recorded`` (sources in its
SOURCES.md) this parses the body with the platform's adapter, as ingestion does, and counts:

- items: the platform's items in the body (Reddit t1/t3 things, X posts, YouTube comments);
- stored: items that became a normalized item (not rejected);
- authors named: items whose source names an author (not ``[deleted]``/``[removed]``, a user
  id or a name), and of those the ones stored with that author;
- placeholders: items stored with a ``[deleted]``/``[removed]`` text (should be 0).

It parses only (no database): re-ingestion (0 rows, 0 updates the second time) is the store's
and is measured by its own tests. Figures are printed and written to
``bench/results/realdata.json``.

    PYTHONPATH=. .venv/bin/python bench/realdata.py
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engagement.ingestion.normalized import NormalizedItem, Parsed, Rejection
from engagement.ingestion.platforms import parse_reddit, parse_x, parse_youtube

RECORDED = Path(__file__).parent.parent / "tests" / "engagement" / "payloads" / "recorded"
RESULTS = Path(__file__).parent / "results" / "realdata.json"
PLACEHOLDERS = ("[deleted]", "[removed]")


def _reddit_authors(body: Any) -> list[str | None]:
    """The author each t1/t3 of a Reddit body names, in the adapter's order."""
    names: list[str | None] = []

    def walk(children: list[Any]) -> None:
        for thing in children:
            if thing.get("kind") not in ("t1", "t3"):
                continue
            data = thing["data"]
            name = data.get("author_fullname") or data.get("author")
            names.append(None if name in PLACEHOLDERS else name)
            replies = data.get("replies")
            if isinstance(replies, dict):
                walk(replies["data"]["children"])

    if isinstance(body, dict) and "json" in body:
        walk(body["json"]["data"]["things"])
    else:
        for listing in body if isinstance(body, list) else [body]:
            walk(listing["data"]["children"])
    return names


def _x_authors(body: Any) -> list[str | None]:
    posts = body.get("data") or []
    return [p.get("author_id") for p in (posts if isinstance(posts, list) else [posts])]


def _youtube_authors(body: Any) -> list[str | None]:
    names: list[str | None] = []
    for thread in body.get("items") or []:
        comments = [thread["snippet"]["topLevelComment"]]
        comments += (thread.get("replies") or {}).get("comments") or []
        for comment in comments:
            channel = comment["snippet"].get("authorChannelId") or {}
            names.append(channel.get("value") if isinstance(channel, dict) else channel)
    return names


ADAPTERS: dict[str, tuple[Callable[[Any], list[Parsed]], Callable[[Any], list[str | None]]]] = {
    "reddit": (parse_reddit, _reddit_authors),
    "x": (parse_x, _x_authors),
    "youtube": (parse_youtube, _youtube_authors),
}


def fidelity(name: str) -> dict[str, Any]:
    """The counts for one recorded response."""
    body = json.loads((RECORDED / name).read_text())
    parse, authors = ADAPTERS[name.split("_", 1)[0]]
    parsed = [p for _, p in parse(body) if p is not None]
    named = authors(body)
    stored = [p for p in parsed if isinstance(p, NormalizedItem)]
    kept = sum(
        1
        for item, author in zip(parsed, named, strict=True)
        if author
        and isinstance(item, NormalizedItem)
        and item.author is not None
        and author in (item.author.platform_user_id, item.author.handle)
    )
    return {
        "items": len(parsed),
        "stored": len(stored),
        "rejected": sum(isinstance(p, Rejection) for p in parsed),
        "authors_named": sum(1 for a in named if a),
        "authors_kept": kept,
        "placeholder_texts": sum(1 for i in stored if (i.text or "").strip() in PLACEHOLDERS),
    }


def main() -> None:
    """Print the counts per response and in total, and write them as JSON."""
    results = {path.name: fidelity(path.name) for path in sorted(RECORDED.glob("*.json"))}
    total = {key: sum(r[key] for r in results.values()) for key in next(iter(results.values()))}
    print(f"{'response':<44}{'items':>6}{'stored':>7}{'named':>7}{'kept':>6}{'placeh.':>8}")
    for name, r in [*results.items(), ("total", total)]:
        print(
            f"{name:<44}{r['items']:>6}{r['stored']:>7}{r['authors_named']:>7}"
            f"{r['authors_kept']:>6}{r['placeholder_texts']:>8}"
        )
    stored_share = total["stored"] / max(1, total["items"])
    author_share = total["authors_kept"] / max(1, total["authors_named"])
    print(f"stored {stored_share:.1%} of items; kept {author_share:.1%} of the authors named")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"responses": results, "total": total}, indent=2) + "\n")


if __name__ == "__main__":
    main()
