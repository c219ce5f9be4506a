"""What a package that records evidence (a hazard, a sensor warning) asks of oversight: a finding.

``vision`` and ``sensors`` sit below ``oversight`` in the layers and know nothing of
findings. Each describes the finding its evidence deserves as a :class:`FindingDraft` and
hands its drafts to a :data:`FindingSink` the application passes in
(``sitetwin.oversight.raising.raise_drafts``). The sink raises them inside the caller's
transaction and answers which finding each draft became; the package writes that id back
to its own record, so a piece of evidence is raised once. Without a sink nothing is raised
and the evidence stays pending, to be raised later.

The sink checks a draft as it checks a finding raised by hand (issue 14): its text must be
clean (``data.text.clean_text``), and the panoramas, detections and hazards its evidence
names must be the draft's own site's; the hazard a draft is raised for (``source="hazard"``,
``evidence["hazard_id"] == source_ref``) may be stored after the sink has answered. A draft
that fails raises the sink's error and none of the batch is raised.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sitetwin.data.store import Store


@dataclass(frozen=True)
class FindingDraft:
    """A finding as the evidence's package would raise it (the fields of ``oversight.raise_finding``)."""

    site_code: str
    category: str                          # safety | quality | progress | environment | ...
    severity: str                          # low | medium | high | critical
    title: str
    source: str                            # the kind of evidence: "hazard", "sensor"
    source_ref: str                        # its id (hazard_id, warning_id): the key of the sink's answer
    raised_by: str                         # the package that found it: "vision", "sensors"
    description: str = ""
    global_id: str | None = None           # the element it concerns, when there is one
    model_id: str | None = None
    storey: str | None = None
    location_m: tuple[float, float, float] | None = None   # site's local frame
    evidence: Mapping[str, Any] = field(default_factory=dict)
    at: dt.datetime | None = None          # when it was seen (naive UTC); None: now


# Raises one finding per draft in the caller's transaction; returns {draft.source_ref: finding_id}.
FindingSink = Callable[[Store, Sequence[FindingDraft]], dict[str, str]]
