"""A cluster's errors read in the reader's language: a bad manifest row and a store that lacks the unit's site are
refused in English by default and in Chinese under zh-CN, naming the same unit; a failed unit's error is recorded
in English (the ledger and ``--json`` stay language-neutral) whatever the language it ran under."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import yaml

from sitetwin.cluster import ManifestError, check_stores, load_manifest
from sitetwin.data.i18n import use_language

KINDS = "model, survey, detect, score"


def _manifest(tmp_path, units) -> object:
    path = tmp_path / "city.yaml"
    path.write_text(yaml.safe_dump(units), encoding="utf-8")
    return path


def test_a_unit_of_an_unknown_kind_is_refused_naming_it_in_either_language(tmp_path):
    path = _manifest(tmp_path, [{"kind": "bogus", "site": "A1", "db": "a1.duckdb"}])
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(info.value) == f"city.yaml: unit 1: unknown kind 'bogus' (kinds: {KINDS})"
    with use_language("zh-CN"):
        assert str(info.value) == f"city.yaml：单元 1：未知类型 'bogus'（可选类型：{KINDS}）"


def test_a_manifest_error_pickled_as_ray_does_keeps_its_unit_and_reads_in_chinese(tmp_path):
    path = _manifest(tmp_path, [{"kind": "bogus", "site": "A1", "db": "a1.duckdb"}])
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    again = pickle.loads(pickle.dumps(info.value))
    with use_language("zh-CN"):
        assert str(again) == f"city.yaml：单元 1：未知类型 'bogus'（可选类型：{KINDS}）"
    assert str(again) == f"city.yaml: unit 1: unknown kind 'bogus' (kinds: {KINDS})"


def test_a_survey_row_naming_a_file_that_is_no_point_cloud_reads_in_chinese_with_its_unit_and_file(tmp_path):
    (tmp_path / "notes.txt").write_text("not a scan", encoding="utf-8")
    path = _manifest(tmp_path, [{"kind": "survey", "site": "A1", "db": "a1.duckdb", "files": ["notes.txt"]}])
    with use_language("zh-CN"), pytest.raises(ManifestError) as info:
        load_manifest(path)
    english = str(info.value)
    assert english.startswith("city.yaml: unit 1 (survey A1): files notes.txt: not a point-cloud file (suffixes: ")
    assert ".e57, .las" in english
    with use_language("zh-CN"):
        chinese = str(info.value)
    assert chinese.startswith("city.yaml：单元 1（survey A1）：files notes.txt：不是点云文件（后缀：")
    assert ".e57, .las" in chinese


def test_a_store_without_the_units_site_is_refused_with_the_unit_label_translated(tmp_path):
    from sitetwin.data.store import open_store

    with open_store(tmp_path / "a1.duckdb"):
        pass                                         # a store, with no site yet
    path = _manifest(tmp_path, [{"kind": "score", "site": "A1", "db": "a1.duckdb"}])
    manifest = load_manifest(path)
    db = manifest.units[0].db
    with pytest.raises(ManifestError) as info:
        check_stores(manifest)
    assert str(info.value) == (f"city.yaml: unit 1 (score A1): no site A1 in {db} (sites: none); load its model first "
                               f"(a model unit) or create it with `sitetwin init --db {db} --site A1`")
    with use_language("zh-CN"):
        assert str(info.value) == (f"city.yaml：单元 1（score A1）：{db} 中没有工地 A1（现有工地：无）；请先载入其模型"
                                   f"（model 单元），或用 `sitetwin init --db {db} --site A1` 创建")
    assert manifest.units[0].label == "unit 1 (score A1)"          # what the ledger and --json keep


def test_a_failed_units_error_is_recorded_in_english_when_it_ran_under_chinese(tmp_path):
    from sitetwin.cluster import inputs, unit_key
    from sitetwin.cluster.queries import ledger_rows
    from sitetwin.cluster.units import execute
    from sitetwin.data.sites import upsert_site
    from sitetwin.data.store import open_store
    from sitetwin.twin.formats import write_las

    write_las(tmp_path / "week12.las", np.random.default_rng(0).uniform(0, 10, (500, 3)))
    with open_store(tmp_path / "a1.duckdb") as store, store.transaction():
        upsert_site(store, "A1")                     # the site, but no model to compare a survey with
    path = _manifest(tmp_path, [{"kind": "survey", "site": "A1", "db": "a1.duckdb", "files": ["week12.las"]}])
    [unit] = load_manifest(path).units
    key = unit_key(unit, [inputs.digest(r) for r in unit.inputs])
    english = "site A1 has no model to compare the survey with; load one first (a model unit)"
    with use_language("zh-CN"):
        outcome = execute(unit, key, run_id="r1", manifest=str(path))
    assert outcome["status"] == "failed" and outcome["error"] == english
    with open_store(unit.db, read_only=True) as store:
        [row] = ledger_rows(store)
    assert row["status"] == "failed" and row["error"] == english
