"""A worker's metrics as JSON, the way its heartbeat carries them to the web app: written by
the worker's main process (``hearth.worker.metrics``), read back by ``/metrics``.

Only Hearth's task and LLM families travel, and what is read back is checked again (a name
of Hearth's, a counter or histogram, text labels, numbers): a row of the database is not
trusted to hold what a worker wrote."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

PREFIXES = ("hearth_tasks", "hearth_task_", "hearth_llm_")
KINDS = frozenset({"counter", "histogram"})


def encode(families: Iterable[Metric]) -> list[dict[str, Any]]:
    """``families`` as JSON-ready dicts: name, type, help and samples [name, labels, value]."""
    return [
        {
            "name": family.name,
            "type": family.type,
            "help": family.documentation,
            "samples": [[s.name, dict(s.labels), s.value] for s in family.samples],
        }
        for family in families
        if family.name.startswith(PREFIXES) and family.type in KINDS
    ]


def decode(data: object) -> list[Metric]:
    """The families of a snapshot; whatever is not a well-formed family of Hearth's is
    left out."""
    if not isinstance(data, list):
        return []
    families = []
    for item in data:
        family = _family(item)
        if family is not None:
            families.append(family)
    return families


def _family(item: object) -> Metric | None:
    from prometheus_client.metrics_core import Metric

    if not isinstance(item, dict):
        return None
    name, kind, text = item.get("name"), item.get("type"), item.get("help")
    if not (isinstance(name, str) and name.startswith(PREFIXES) and kind in KINDS):
        return None
    family = Metric(name, text if isinstance(text, str) else "", str(kind))
    samples = item.get("samples")
    for sample in samples if isinstance(samples, list) else []:
        if not (isinstance(sample, list) and len(sample) == 3):  # noqa: PLR2004 (name, labels, value)
            continue
        sample_name, labels, value = sample
        if (
            isinstance(sample_name, str)
            and sample_name.startswith(name)
            and isinstance(labels, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        ):
            family.add_sample(sample_name, labels, float(value))
    return family
