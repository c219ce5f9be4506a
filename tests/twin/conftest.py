"""Fixtures for the survey tests: the demo store with a survey added, writable copies.

The demo building's mesh, as-built history and simulated epoch survey are in
``tests/conftest.py`` (the synthetic-data tests use them too); tests that write copy the
demo store first.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sitetwin.data.store import copy_store


@pytest.fixture(scope="session")
def analysed(tmp_path_factory, demo_store_path, demo, epoch_survey):
    """A store with the epoch survey added by automatic registration: (db path, SurveyReport)."""
    from sitetwin.data.store import open_store
    from sitetwin.twin.survey import add_survey

    db = copy_store(demo_store_path, tmp_path_factory.mktemp("analysed") / demo_store_path.name)
    with open_store(db) as store:
        report = add_survey(store, [epoch_survey.path], model_ids=[demo.model_id], epoch=epoch_survey.epoch)
    return db, report


@pytest.fixture
def writable_store(demo_store_path, tmp_path) -> Path:
    """A fresh copy of the demo store, to change."""
    return copy_store(demo_store_path, tmp_path / demo_store_path.name)


def table_counts(store) -> dict[str, int]:
    """Rows per survey table: what 'the store is unchanged' is checked against."""
    return {t: int(store.scalar(f"SELECT count(*) FROM {t}"))
            for t in ("surveys", "scans", "element_deviation", "element_histograms", "unplanned_objects")}
