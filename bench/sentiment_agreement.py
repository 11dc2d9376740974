"""How well engagement's sentiment agrees with people: VADER against human ratings.

The corpora are Hutto & Gilbert's (ICWSM 2014, see ``infra/local/vader_corpus.py``): 4,200
tweets and 3,708 Amazon review snippets, each with the mean of about 20 human ratings on
-4 .. +4. For each corpus this prints and writes (``bench/results/sentiment_agreement.json``):

- Pearson and Spearman correlation of VADER's compound score with the mean human rating;
- 3-class accuracy: VADER's label (compound >= 0.05 positive, <= -0.05 negative, the
  thresholds engagement uses) against the people's (mean rating >= 0.5 positive, <= -0.5
  negative, neutral between: half a point either side of 0 on their 9-point scale);
- the same as the service sees it: the share of texts py3langid calls English (only those
  get a score) and the accuracy on that share;
- VADER's throughput on this machine;
- as the service sees it, every text counted: ``understand()`` (language, then the
  language's analyser; a text it leaves unanalyzed counts as a score of 0 and a wrong class),
  its Pearson correlation with the people, its 3-class accuracy, the share it scores, and its
  CPU microseconds per text (``time.process_time``, the bulk path is CPU-bound).

Then, for each language of the labelled posts in ``tests/engagement/labelled`` (clear positive
and negative posts, 50 a language): polarity accuracy counting every post (unanalyzed is
wrong), the share analysed, and CPU microseconds per post once the analyser is loaded.

    PYTHONPATH=. .venv/bin/python bench/sentiment_agreement.py
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from engagement.understanding import ANALYSERS, detect_language, sentiment_label, understand
from infra.local import vader_corpus

RESULTS = Path(__file__).parent / "results" / "sentiment_agreement.json"
LABELLED = Path(__file__).parent.parent / "tests" / "engagement" / "labelled"
MIN_CONFIDENCE = 0.5  # ENGAGEMENT_LANGUAGE_MIN_CONFIDENCE's default
HUMAN_THRESHOLD = 0.5
CLASSES = ("negative", "neutral", "positive")


def pearson(xs: list[float], ys: list[float]) -> float:
    """Pearson's correlation coefficient."""
    return float(np.corrcoef(np.asarray(xs), np.asarray(ys))[0, 1])


def average_ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of their positions (as Spearman's rho wants)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman's rank correlation (Pearson's of the average ranks)."""
    return pearson(average_ranks(xs), average_ranks(ys))


def human_label(rating: float) -> str:
    """The people's class of a mean rating on -4 .. +4."""
    if rating >= HUMAN_THRESHOLD:
        return "positive"
    if rating <= -HUMAN_THRESHOLD:
        return "negative"
    return "neutral"


def agreement(rated: list[vader_corpus.Rated]) -> dict[str, Any]:
    """The figures for one corpus."""
    analyzer = SentimentIntensityAnalyzer()
    started = time.perf_counter()
    compounds = [float(analyzer.polarity_scores(r.text)["compound"]) for r in rated]
    seconds = time.perf_counter() - started
    humans = [r.rating for r in rated]
    predicted = [sentiment_label(c) for c in compounds]
    expected = [human_label(h) for h in humans]
    hits = [p == e for p, e in zip(predicted, expected, strict=True)]
    english = [detect_language(r.text, min_confidence=0.5) == "en" for r in rated]
    english_hits = [hit for hit, en in zip(hits, english, strict=True) if en]
    confusion = Counter(zip(expected, predicted, strict=True))
    return {
        "texts": len(rated),
        "pearson": round(pearson(compounds, humans), 4),
        "spearman": round(spearman(compounds, humans), 4),
        "accuracy_3_class": round(sum(hits) / len(hits), 4),
        "human_classes": {c: expected.count(c) for c in CLASSES},
        "confusion": {
            f"human {h} / vader {p}": confusion[(h, p)] for h in CLASSES for p in CLASSES
        },
        "english_share": round(sum(english) / len(english), 4),
        "accuracy_3_class_english_only": round(sum(english_hits) / max(1, len(english_hits)), 4),
        "vader_texts_per_second": round(len(rated) / seconds),
        **as_the_service_sees_it(rated, humans, expected),
    }


def as_the_service_sees_it(
    rated: list[vader_corpus.Rated], humans: list[float], expected: list[str]
) -> dict[str, Any]:
    """``understand()`` on every text, the unanalyzed ones counted as 0 and wrong."""
    for language in ("en", "pt", "fr", "de"):
        ANALYSERS[language]("ok")  # loaded first: a model's loading is not per text
    started = time.process_time()
    found = [understand(r.text, min_confidence=MIN_CONFIDENCE) for r in rated]
    cpu = time.process_time() - started
    scores = [f.sentiment_score if f.sentiment_score is not None else 0.0 for f in found]
    hits = [f.sentiment_label == e for f, e in zip(found, expected, strict=True)]
    return {
        "service_pearson_every_text": round(pearson(scores, humans), 4),
        "service_accuracy_3_class_every_text": round(sum(hits) / len(hits), 4),
        "service_scored_share": round(
            sum(f.sentiment_score is not None for f in found) / len(found), 4
        ),
        "service_cpu_us_per_text": round(cpu / len(rated) * 1e6),
    }


def labelled_accuracy() -> dict[str, Any]:
    """Polarity accuracy per language on the labelled posts (every post counted)."""
    figures: dict[str, Any] = {}
    for path in sorted(LABELLED.glob("*.tsv")):
        rows = [line.split("\t", 1) for line in path.read_text().splitlines() if line.strip()]
        analyse = ANALYSERS.get(path.stem)
        if analyse is not None:
            analyse(rows[0][1])  # load the model first: its loading is not per text
        started = time.process_time()
        found = [understand(text, min_confidence=MIN_CONFIDENCE) for _, text in rows]
        cpu = time.process_time() - started
        wanted = ["positive" if mark == "+" else "negative" for mark, _ in rows]
        hits = sum(f.sentiment_label == w for f, w in zip(found, wanted, strict=True))
        figures[path.stem] = {
            "posts": len(rows),
            "accuracy": round(hits / len(rows), 3),
            "analysed_share": round(
                sum(f.sentiment_score is not None for f in found) / len(rows), 3
            ),
            "cpu_us_per_post": round(cpu / len(rows) * 1e6),
        }
    return figures


def main() -> None:
    """Print the figures for both corpora and write them as JSON."""
    try:
        corpora = {
            "tweets": vader_corpus.tweets(),
            "amazon_review_snippets": vader_corpus.amazon_snippets(),
        }
    except vader_corpus.CorpusUnavailable as exc:
        raise SystemExit(f"cannot fetch VADER's corpora: {exc}") from None
    results = {name: agreement(rated) for name, rated in corpora.items()}
    results["source"] = {
        "data": "Hutto & Gilbert, VADER: A Parsimonious Rule-based Model for Sentiment "
        "Analysis of Social Media Text, ICWSM 2014 (vaderSentiment sdist)",
        "version": vader_corpus.locked_sdist()[0],
        "human_threshold": HUMAN_THRESHOLD,
        "vader_thresholds": [-0.05, 0.05],
    }
    print(
        f"{'corpus':<24}{'texts':>7}{'pearson':>9}{'spearman':>10}{'acc 3cl':>9}"
        f"{'en share':>10}{'acc en':>8}{'texts/s':>9}"
    )
    for name, figures in results.items():
        if name in ("source", "labelled_posts_by_language"):
            continue
        print(
            f"{name:<24}{figures['texts']:>7}{figures['pearson']:>9.3f}"
            f"{figures['spearman']:>10.3f}{figures['accuracy_3_class']:>9.3f}"
            f"{figures['english_share']:>10.3f}{figures['accuracy_3_class_english_only']:>8.3f}"
            f"{figures['vader_texts_per_second']:>9}"
        )
    print(
        f"\n{'as the service sees it':<24}{'pearson':>9}{'acc 3cl':>9}{'scored':>8}{'us/text':>9}"
    )
    for name, figures in results.items():
        if name == "source":
            continue
        print(
            f"{name:<24}{figures['service_pearson_every_text']:>9.3f}"
            f"{figures['service_accuracy_3_class_every_text']:>9.3f}"
            f"{figures['service_scored_share']:>8.3f}{figures['service_cpu_us_per_text']:>9}"
        )
    languages = labelled_accuracy()
    results["labelled_posts_by_language"] = languages
    print(f"\n{'language':<10}{'posts':>6}{'accuracy':>10}{'analysed':>10}{'us/post':>9}")
    for language, figures in languages.items():
        print(
            f"{language:<10}{figures['posts']:>6}{figures['accuracy']:>10.3f}"
            f"{figures['analysed_share']:>10.3f}{figures['cpu_us_per_post']:>9}"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
