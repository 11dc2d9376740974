"""Understanding a text on ingestion: its language (py3langid) and, for English, its sentiment.

Sentiment is VADER's compound score, labelled with VADER's standard thresholds (>= 0.05
positive, <= -0.05 negative, neutral between). VADER only knows English, so any other
language (or an undetermined one) is ``unanalyzed``: never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

UNDETERMINED = "und"
POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05

# What tells nothing about a language: links, @mentions, hashtags' "#", digits.
_NOISE = re.compile(r"https?://\S+|www\.\S+|@\w+|#|\d+")


@dataclass(frozen=True)
class Understanding:
    """What ingestion learned about a text."""

    language: str
    sentiment_score: float | None
    sentiment_label: str


@cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def warm_up() -> None:
    """Load both models now (about two seconds) rather than on the first request."""
    _identifier()
    _vader()


def detect_language(text: str | None, *, min_confidence: float) -> str:
    """The ISO 639-1 code of ``text``'s language, or ``und`` when unsure or empty."""
    cleaned = _NOISE.sub(" ", text or "").strip()
    if not any(ch.isalpha() for ch in cleaned):
        return UNDETERMINED
    language, probability = _identifier().classify(cleaned)
    return str(language) if float(probability) >= min_confidence else UNDETERMINED


def sentiment_label(score: float) -> str:
    """VADER's label of a compound score."""
    if score >= POSITIVE_THRESHOLD:
        return "positive"
    if score <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def understand(text: str | None, *, min_confidence: float) -> Understanding:
    """Language, and sentiment for English texts (``unanalyzed`` otherwise)."""
    language = detect_language(text, min_confidence=min_confidence)
    if language != "en" or not text:
        return Understanding(language, None, "unanalyzed")
    score = round(float(_vader().polarity_scores(text)["compound"]), 4)
    return Understanding(language, score, sentiment_label(score))
