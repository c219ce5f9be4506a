"""Revision diffs: by GlobalId, and by class plus geometry where GlobalIds were regenerated."""

from __future__ import annotations

import pytest

from sitetwin.bim.diff import diff_models, latest_versions
from sitetwin.bim.errors import BimError
from sitetwin.bim.load import load_model

BASE = (("IfcWall", "W1", (0, 0, 0), (4, 3, 0.2)),
        ("IfcWall", "W2", (5, 0, 0), (4, 3, 0.2)),
        ("IfcColumn", "C1", (0, 5, 0), (0.4, 3, 0.4)),
        ("IfcSlab", "S1", (0, 0, 3), (10, 0.25, 6)))


def test_same_globalids_give_added_removed_and_changed_elements(box_model, store):
    old = box_model("old.ifc", boxes=BASE, seed=7)
    # same seed -> same GlobalIds for the first elements; W2 moved 5 cm, C1 removed, a new beam added
    new_boxes = (BASE[0], ("IfcWall", "W2", (5.05, 0, 0), (4, 3, 0.2)), BASE[3],
                 ("IfcBeam", "B1", (0, 6, 3), (10, 0.5, 0.3)))
    new = box_model("new.ifc", boxes=new_boxes, seed=7)
    a = load_model(store, old, site_code="S", name="m")
    b = load_model(store, new, site_code="S", name="m")
    diff = diff_models(store, a.model_id, b.model_id)
    gid = {r["name"]: r["global_id"] for r in store.rows("SELECT name, global_id FROM elements WHERE model_id = ?",
                                                         [a.model_id])}
    changed = {c.global_id: c.fields for c in diff.changed}
    assert changed == {gid["W2"]: ("geometry",)}
    assert diff.unchanged == 2                               # W1 and the slab
    assert diff.removed == (gid["C1"],)
    assert [store.scalar("SELECT name FROM elements WHERE global_id = ?", [g]) for g in diff.added] == ["B1"]
    assert latest_versions(store, "S", "m") == (a.model_id, b.model_id)


def test_regenerated_globalids_are_matched_by_class_and_geometry(box_model, store):
    old = box_model("old.ifc", boxes=BASE, seed=1)
    new = box_model("new.ifc", boxes=BASE[:3], seed=2)       # every GlobalId new, slab gone
    a = load_model(store, old, site_code="S", name="m")
    b = load_model(store, new, site_code="S", name="m")
    diff = diff_models(store, a.model_id, b.model_id)
    assert len(diff.rematched) == 3
    assert all(c.fields == () for c in diff.rematched)       # same elements, new ids
    assert len(diff.removed) == 1 and diff.added == ()
    removed_class = store.scalar("SELECT ifc_class FROM elements WHERE global_id = ?", [diff.removed[0]])
    assert removed_class == "IfcSlab"
    assert not diff.global_ids_stable


def test_a_moved_element_under_a_new_globalid_beyond_tolerance_is_added_and_removed(box_model, store):
    old = box_model("old.ifc", boxes=BASE[:1], seed=1)
    new = box_model("new.ifc", boxes=(("IfcWall", "W1", (0.5, 0, 0), (4, 3, 0.2)),), seed=2)
    a = load_model(store, old, site_code="S", name="m")
    b = load_model(store, new, site_code="S", name="m")
    diff = diff_models(store, a.model_id, b.model_id, tolerance_m=0.01)
    assert (len(diff.added), len(diff.removed), len(diff.rematched)) == (1, 1, 0)


def test_diffing_an_unknown_model_names_it(store):
    with pytest.raises(BimError, match="no model 'nope'"):
        diff_models(store, "nope", "nada")


def test_a_model_with_one_version_cannot_be_diffed_by_name(box_model, store):
    load_model(store, box_model(), site_code="S", name="m")
    with pytest.raises(BimError, match="1 version"):
        latest_versions(store, "S", "m")
