"""Findings raised from other packages' evidence: vision's hazards, sensors' warnings.

The application hands :func:`raise_drafts` to ``vision`` (a detection run) and ``sensors``
(warning evaluation, the ingest server) as their ``FindingSink`` (see
``sitetwin.data.evidence``): they describe the findings their evidence deserves, this
raises them, and they link each back to its hazard or warning.

A draft passes the same checks as a finding raised by hand (``findings.raise_finding``): clean
text, evidence that names only the site's own panoramas, detections and hazards, view angles in
range. Only the length of the machine-written title and description is forgiven: they are cut to
``TITLE_MAX`` / ``NOTE_MAX`` (with an ellipsis) rather than refused, since a device's or a rule's
long name should not stop its finding.
"""

from __future__ import annotations

from collections.abc import Sequence

from sitetwin.data.evidence import FindingDraft
from sitetwin.data.store import Store, atomic
from sitetwin.data.text import NOTE_MAX, TITLE_MAX
from sitetwin.oversight.findings import raise_finding


def raise_drafts(store: Store, drafts: Sequence[FindingDraft]) -> dict[str, str]:
    """Raise a finding for each draft, all or none, inside the caller's transaction when there is one.

    Returns ``{draft.source_ref: finding_id}``. An empty batch raises nothing; a draft that fails the checks
    raises ``FindingError`` and none of the batch is stored.
    """
    raised: dict[str, str] = {}
    if not drafts:
        return raised
    with atomic(store):
        for d in drafts:
            raised[d.source_ref] = raise_finding(
                store, site_code=d.site_code, category=d.category, severity=d.severity,
                title=_cut(d.title, TITLE_MAX), description=_cut(d.description, NOTE_MAX), raised_by=d.raised_by,
                global_id=d.global_id, model_id=d.model_id, storey=d.storey, location_m=d.location_m,
                evidence=dict(d.evidence), source=d.source, source_ref=d.source_ref, at=d.at)
    return raised


def _cut(text: str, limit: int) -> str:
    if isinstance(text, str) and len(text.strip()) > limit:
        return text.strip()[:limit - 1].rstrip() + "…"
    return text
