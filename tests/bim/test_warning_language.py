"""A model load's and a schedule import's warnings read in the reader's language; their str stays the
English it always was (what --json, the store and other tests see)."""

from __future__ import annotations

from sitetwin.bim.load import load_model
from sitetwin.bim.schedule_store import import_schedule_file
from sitetwin.data.errors import Note
from sitetwin.data.i18n import use_language
from sitetwin.data.sites import upsert_site
from sitetwin.data.store import open_store

EVENTLOG = "schedule/schependomlaan/eventlog_IFC_schependomlaan_asplanned.csv"


def broken_georeference(shared_data, tmp_path):
    text = (shared_data / "ifc/validation/pass-grf000-correct_georeferencing.ifc").read_text()
    good_e, good_n = "3458715.92", "5439966.65"
    assert good_e in text
    path = tmp_path / "broken-georef.ifc"
    path.write_text(text.replace(f"{good_e},{good_n}", f"{good_e},9439966.65"))   # 4000 km north
    return path


def test_a_broken_georeference_warns_in_chinese_and_in_english_as_before(shared_data, tmp_path):
    path = broken_georeference(shared_data, tmp_path)
    with open_store(tmp_path / "a.duckdb") as store:
        (line,) = load_model(store, path, site_code="G").warnings
    assert isinstance(line, Note)
    assert line.startswith("broken-georef.ifc: georeferencing ignored, map conversion puts the model ")
    assert line.endswith("; keeping the local frame")
    with use_language("zh-CN"):
        chinese = str(line)
    assert chinese.startswith("broken-georef.ifc：已忽略地理配准（地图转换把模型")
    assert chinese.endswith("）；保留本地坐标系") and "map conversion" not in chinese


def test_the_georeference_warning_still_reads_in_chinese_when_the_model_comes_from_the_parse_cache(shared_data,
                                                                                                    tmp_path):
    path = broken_georeference(shared_data, tmp_path)
    cache = tmp_path / "cache"
    with open_store(":memory:", cache_dir=cache) as store:
        first = load_model(store, path, site_code="G")
    with open_store(":memory:", cache_dir=cache) as store:
        again = load_model(store, path, site_code="G")
    assert again.cache_hit and not first.cache_hit
    assert again.warnings == first.warnings
    with use_language("zh-CN"):
        assert [str(w) for w in again.warnings] == [str(w) for w in first.warnings]
        assert "地图转换把模型" in str(again.warnings[0])


def test_a_file_that_repeats_a_global_id_warns_in_the_readers_language(box_model, store):
    path = box_model("dup.ifc", boxes=(("IfcWall", "W1", (0.0, 0.0, 0.0), (4.0, 3.0, 0.2)),
                                       ("IfcWall", "W1", (5.0, 0.0, 0.0), (4.0, 3.0, 0.2)),   # same name: same GlobalId
                                       ("IfcWall", "W2", (0.0, 5.0, 0.0), (4.0, 3.0, 0.2))))
    report = load_model(store, path, site_code="D")
    assert report.element_count == 2
    assert report.warnings == ("dup.ifc: 1 product(s) repeat a GlobalId already used in the file; kept the first",)
    with use_language("zh-CN"):
        assert str(report.warnings[0]) == "dup.ifc：1 个产品重复使用文件中已有的 GlobalId；保留第一个"


def test_a_schedule_imported_again_and_links_to_no_element_warn_in_the_readers_language(shared_data, store):
    upsert_site(store, "NIJ")
    first = import_schedule_file(store, shared_data / EVENTLOG, site_code="NIJ")
    again = import_schedule_file(store, shared_data / EVENTLOG, site_code="NIJ")
    target, name = first["schedule_id"], "eventlog_IFC_schependomlaan_asplanned.csv"
    assert first["warnings"] == [f"{name}: none of its 7166 GlobalIds is an element of site NIJ's models; the links "
                                 "are kept for models loaded later"]
    assert again["warnings"][0] == f"{name}: already imported as schedule {target}"
    with use_language("zh-CN"):
        assert str(first["warnings"][0]) == (f"{name}：其 7166 个 GlobalId 均不是工地 NIJ 模型中的构件；"
                                             "关联已保留，供之后加载的模型使用")
        assert str(again["warnings"][0]) == f"{name}：已作为进度计划 {target} 导入"
