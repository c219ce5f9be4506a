"""Findings raised from other packages' evidence: vision's hazards, sensors' warnings.

The application hands :func:`raise_drafts` to ``vision`` (a detection run) and ``sensors``
(warning evaluation, the ingest server) as their ``FindingSink`` (see
``sitetwin.data.evidence``): they describe the findings their evidence deserves, this
raises them, and they link each back to its hazard or warning.
"""

from __future__ import annotations

from collections.abc import Sequence

from sitetwin.data.evidence import FindingDraft
from sitetwin.data.store import Store, atomic
from sitetwin.oversight.findings import raise_finding


def raise_drafts(store: Store, drafts: Sequence[FindingDraft]) -> dict[str, str]:
    """Raise a finding for each draft, all or none, inside the caller's transaction when there is one.

    Returns ``{draft.source_ref: finding_id}``. An empty batch raises nothing.
    """
    raised: dict[str, str] = {}
    if not drafts:
        return raised
    with atomic(store):
        for d in drafts:
            raised[d.source_ref] = raise_finding(
                store, site_code=d.site_code, category=d.category, severity=d.severity, title=d.title,
                description=d.description, raised_by=d.raised_by, global_id=d.global_id, model_id=d.model_id,
                storey=d.storey, location_m=d.location_m, evidence=dict(d.evidence), source=d.source,
                source_ref=d.source_ref, at=d.at)
    return raised
