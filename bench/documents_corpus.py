"""The documents benchmark's corpus: texts of realistic length and the vectors an embedding
model would give them, both deterministic.

Documents are written from topics: each topic has words of its own, and a document draws
most of its words from one or two topics and the rest from a vocabulary every topic shares,
so documents of a topic share words. The "model" is a bag of words under a fixed sparse
random projection (each word adds a few ±1 entries of its own, weighted by how telling the
word is), normalised: texts that share words are near, as with a real embedding model, and
the neighbourhoods are not uniform noise, so the HNSW index's recall means something.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

DIMENSIONS = 384  # as small embedding models (all-MiniLM, bge-small) give
MODEL = "nomic-embed-text"  # the name the double answers to; its vectors are the corpus's own
SEED = 20261201
TOPICS = 400
TOPIC_WORDS = 80
SHARED_WORDS = 3000
NONZERO_PER_WORD = 12  # entries each word sets in the projection
SHARED_WEIGHT = 0.25  # a word every topic uses tells less than a topic's own
MIN_WORDS, MAX_WORDS = 160, 300  # about 1.1 to 2.1 KB of text
QUERY_WORDS = 12

# Syllables the generated words are made of; spelled as one string, read as a list.
_SYLLABLE_TEXT = (
    "ka ri to ne mi sa lu ve do pa gri stel mon var ten bel cor dan fel gor han jor kel lin "
    "mar nor pel quin ros sil tor ul vin wex yar zel ash bri cle dru eth fro glo hus ind jas "
    "kro lem mur nox orb pry qua rus sky thr urn vox wil xan yel zor"
)
_SYLLABLES = _SYLLABLE_TEXT.split(" ")
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[list[str], list[list[str]], dict[str, float]]:
    """The shared words, each topic's words, and every word's weight."""
    rng = random.Random(SEED)
    seen: set[str] = set()

    def new_word() -> str:
        while True:
            word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
            if word not in seen:
                seen.add(word)
                return word

    shared = [new_word() for _ in range(SHARED_WORDS)]
    topics = [[new_word() for _ in range(TOPIC_WORDS)] for _ in range(TOPICS)]
    weights = dict.fromkeys(shared, SHARED_WEIGHT)
    weights.update({word: 1.0 for words in topics for word in words})
    return shared, topics, weights


def _sentence(words: list[str]) -> str:
    return " ".join(words).capitalize() + "."


def _words(rng: random.Random, count: int) -> list[str]:
    shared, topics, _ = _vocabulary()
    own = [topics[rng.randrange(TOPICS)] for _ in range(rng.choice((1, 1, 2)))]
    # Shared words follow a Zipf-like curve: a few are everywhere, as in real text.
    ranks = rng.choices(range(SHARED_WORDS), k=count)
    words: list[str] = []
    for rank in ranks:
        if rng.random() < 0.45:
            topic = own[rng.randrange(len(own))]
            words.append(topic[int(rng.paretovariate(1.2)) % TOPIC_WORDS])
        else:
            words.append(shared[int(rank * rng.random())])
    return words


def document(number: int) -> str:
    """Document ``number``'s text: a title line, then sentences, 1.2 to 2.1 KB."""
    rng = random.Random(SEED * 1_000_003 + number)
    words = _words(rng, rng.randint(MIN_WORDS, MAX_WORDS))
    sentences, start = [], 0
    while start < len(words):
        length = rng.randint(8, 20)
        sentences.append(_sentence(words[start : start + length]))
        start += length
    return f"Note {number}: {' '.join(words[:4])}\n\n" + " ".join(sentences)


def documents(count: int) -> Iterator[str]:
    """The first ``count`` documents' texts, in order."""
    return (document(number) for number in range(count))


def query(number: int) -> str:
    """Search text ``number``: a dozen words of one topic and the shared vocabulary."""
    rng = random.Random(SEED * 7_000_003 + number)
    return " ".join(_words(rng, QUERY_WORDS))


@lru_cache(maxsize=200_000)
def _signed(word: str) -> tuple[tuple[int, float], ...]:
    """The entries ``word`` adds: NONZERO_PER_WORD (index, ±weight) pairs from its hash."""
    digest = hashlib.blake2b(word.encode(), digest_size=3 * NONZERO_PER_WORD).digest()
    weight = _vocabulary()[2].get(word, SHARED_WEIGHT)
    return tuple(
        (
            (digest[3 * i] * 256 + digest[3 * i + 1]) % DIMENSIONS,
            weight if digest[3 * i + 2] & 1 else -weight,
        )
        for i in range(NONZERO_PER_WORD)
    )


def embed(text: str) -> str:
    """The "model's" vector for ``text``, unit length, as text: a JSON array of DIMENSIONS
    numbers (6 decimals), which is also pgvector's text form."""
    vector = [0.0] * DIMENSIONS
    for word, count in Counter(_WORD.findall(text.lower())).items():
        scale = 1.0 + (count - 1) ** 0.5  # repeated words count, but less than linearly
        for index, value in _signed(word):
            vector[index] += value * scale
    norm = sum(value * value for value in vector) ** 0.5 or 1.0
    return json.dumps([round(value / norm, 6) for value in vector], separators=(",", ":"))


@dataclass
class Corpus:
    """The documents' texts, their vectors (keyed by text, as the double looks them up; made
    beforehand, so the double answers at once) and the search queries."""

    texts: list[str]
    vectors: dict[str, str]
    queries: list[str]


def build(count: int, queries: int) -> Corpus:
    """``count`` documents and ``queries`` search texts, with every vector computed."""
    texts = list(documents(count))
    asked = [query(number) for number in range(queries)]
    vectors = {text: embed(text) for text in (*texts, *asked)}
    return Corpus(texts, vectors, asked)
