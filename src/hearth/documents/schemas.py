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
            # Strict JSON: NaN and Infinity (1e400 reads as Infinity) are not JSON at all.
            text = json.dumps(value, allow_nan=False)
        except ValueError:
            raise ValueError("metadata holds NaN or Infinity, which JSON cannot hold") from None
        if len(text) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON")
        if _holds_nul(value):  # PostgreSQL's jsonb refuses the NUL character
            raise ValueError("metadata holds a NUL character, which PostgreSQL cannot store")
        return value


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
    """Documents to store at once, embedded by one task."""

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
    pending: int = Field(description="Documents not embedded yet, so not searched.")
