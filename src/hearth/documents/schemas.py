"""What the documents API takes and gives."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

MAX_TEXT_CHARS = 100_000
MAX_METADATA_BYTES = 16_384
MAX_BATCH = 100
MAX_RESULTS = 50
# Document ids are PostgreSQL integers: a larger id names no document and must not reach SQL.
MAX_DOCUMENT_ID = 2**31 - 1
# Metadata as stored: strict JSON (NaN and Infinity, which 1e400 reads as, are not JSON at
# all), its text kept as written rather than escaped to ASCII.
_STRICT_JSON = json.JSONEncoder(allow_nan=False, ensure_ascii=False)


class StoredMetadata(dict[str, Any]):
    """Metadata that passed ``DocumentIn``'s checks, with the JSON text they encoded it to:
    what the database stores, so a batch is not encoded twice."""

    __slots__ = ("json",)

    def __init__(self, value: dict[str, Any], json: str) -> None:
        super().__init__(value)
        self.json = json


class DocumentIn(BaseModel):
    """A document to store: its text and any JSON metadata."""

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _storable_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is blank")
        if "\x00" in value:
            raise ValueError("text holds a NUL character, which PostgreSQL cannot store")
        return value

    @field_validator("metadata")
    @classmethod
    def _storable_metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            text = _STRICT_JSON.encode(value)
        except ValueError:
            raise ValueError("metadata holds NaN or Infinity, which JSON cannot hold") from None
        try:
            size = len(text.encode())
        except UnicodeEncodeError:  # "\ud800" in the body: JSON reads it, UTF-8 cannot hold it
            raise ValueError(
                "metadata holds a lone surrogate (a \\uD800-\\uDFFF escape without its "
                "pair), which is not Unicode text"
            ) from None
        if size > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON")
        # PostgreSQL's jsonb refuses the NUL character, which JSON always writes \u0000:
        # without that in the text, no key or string holds one.
        if "\\u0000" in text and _holds_nul(value):
            raise ValueError("metadata holds a NUL character, which PostgreSQL cannot store")
        return StoredMetadata(value, text)

    def metadata_json(self) -> str:
        """The metadata as the database stores it: JSON text (the validator checked that it
        encodes, and its size)."""
        if isinstance(self.metadata, StoredMetadata):
            return self.metadata.json
        return _STRICT_JSON.encode(self.metadata)  # set after validation


def _holds_nul(value: object) -> bool:
    """Whether a NUL character stands in any key or string of a JSON value."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


class DocumentBatchIn(BaseModel):
    """Documents to store at once; the worker embeds them."""

    documents: list[DocumentIn] = Field(min_length=1, max_length=MAX_BATCH)


class DocumentsAccepted(BaseModel):
    """Stored (committed): a worker embeds them next; ``GET /documents/{id}`` follows each.

    No task id: any embedding run takes every pending document, so which run embeds these
    is not known when they are accepted, and a queue that is down after the commit delays
    them (the worker's sweep sends a run) without undoing the answer."""

    ids: list[int]
    status: Literal["pending"] = "pending"
    detail: str = "Stored; a worker embeds them next (GET /documents/{id} shows when)."


class DocumentOut(BaseModel):
    """A stored document and whether the worker has embedded it yet."""

    id: int
    text: str
    metadata: dict[str, Any]
    status: Literal["pending", "embedded"]
    embedding_model: str | None
    embedded_at: datetime | None
    error: str | None = Field(description="Why the last embedding attempt failed, if it did.")
    created_at: datetime


class SearchHit(BaseModel):
    """A document found, with its similarity to the query."""

    id: int
    text: str
    metadata: dict[str, Any]
    score: float = Field(description="Cosine similarity to the query, 1 is identical.")


class SearchResults(BaseModel):
    """The documents nearest in meaning to a query, best first."""

    query: str
    model: str
    results: list[SearchHit]
    pending: int = Field(
        description="Documents not searched: they hold no vector of the query's model yet "
        "(not embedded, or embedded by another model and waiting to be re-embedded)."
    )


class StatusCounts(BaseModel):
    """How many documents are in each status; the three add up to ``total``."""

    embedded: int = Field(description="Embedded, by whichever model.")
    pending: int = Field(description="Waiting for the worker, no failed attempt.")
    failed: int = Field(description="Waiting; the last attempt failed (retried by the sweep).")
    total: int


class ModelCount(BaseModel):
    """The documents holding a vector of one embedding model."""

    model: str
    embedded: int = Field(description="Embedded by this model.")
    requeued: int = Field(description="Still holding this model's vector, queued again.")
    current: bool = Field(description="Whether it is the embedding model in force.")


class Failure(BaseModel):
    """A document whose last embedding attempt failed, and why."""

    id: int
    excerpt: str = Field(description="The first 120 characters of its text.")
    error: str


class ReembedProgress(BaseModel):
    """How many documents hold a vector of the embedding model in force, out of all."""

    model: str
    done: int = Field(description="Embedded by this model.")
    total: int
    waiting: int = Field(description="Waiting for the worker (failed ones included).")
    failed: int = Field(description="Waiting, their last attempt failed.")

    @property
    def complete(self) -> bool:
        """Whether every document holds a vector of the model."""
        return self.done >= self.total


class DocumentsOverview(BaseModel):
    """The Documents page as data: counts by status and by model, failures, progress."""

    model: str = Field(description="The embedding model in force.")
    counts: StatusCounts
    models: list[ModelCount]
    other_models: int = Field(
        description="Documents embedded by another model than the one in force: not found "
        "by search until re-embedded (POST /documents/reembed)."
    )
    failures: list[Failure] = Field(description="The oldest 50 failed documents.")
    progress: ReembedProgress


class ReembedQueued(BaseModel):
    """What a re-embedding request did: documents marked pending, and the progress now."""

    model: str
    queued: int = Field(description="Documents marked pending by this request.")
    progress: ReembedProgress
    detail: str
