"""A design model or schedule that cannot be read is refused in the reader's language, naming the same
file, line and values in English (the default, and what is stored) and in Chinese."""

from __future__ import annotations

import pytest

from sitetwin.bim.errors import IfcFileError, NoElementsError
from sitetwin.bim.load import load_model
from sitetwin.bim.schedule_store import import_schedule_file
from sitetwin.data.errors import SitetwinError, message_text
from sitetwin.data.i18n import use_language


def _refusal(call, cls=SitetwinError) -> SitetwinError:
    with pytest.raises(cls) as info:
        call()
    return info.value


def test_a_truncated_ifc_file_is_refused_in_english_and_in_chinese(shared_data, store, tmp_path):
    data = (shared_data / "ifc/schependomlaan/YTONG-Algemeen.ifc").read_bytes()
    cut = tmp_path / "YTONG-cut.ifc"
    cut.write_bytes(data[: len(data) // 2])
    exc = _refusal(lambda: load_model(store, cut, site_code="T"), IfcFileError)
    english = f"{cut}: truncated IFC file (no END-ISO-10303-21; trailer); re-export or re-download it"
    assert str(exc) == english
    with use_language("zh-CN"):
        assert str(exc) == f"{cut}：IFC 文件不完整（没有 END-ISO-10303-21; 结尾）；请重新导出或重新下载"
        assert message_text(exc) == english           # what is stored stays English
    assert store.scalar("SELECT count(*) FROM models") == 0


def test_a_draft_ifc4x3_schema_is_refused_with_its_hint_in_chinese(shared_data, store, tmp_path):
    text = (shared_data / "ifc/validation/pass-ifc101-IFC4X3_ADD2.ifc").read_text(encoding="utf-8")
    draft = tmp_path / "draft.ifc"
    draft.write_text(text.replace("'IFC4X3_ADD2'", "'IFC4X3'", 1), encoding="utf-8")
    exc = _refusal(lambda: load_model(store, draft, site_code="T"), IfcFileError)
    assert str(exc).startswith(f"{draft}: unsupported IFC schema 'IFC4X3' (supported: IFC2X3, IFC4, IFC4X3_ADD2); "
                               "'IFC4X3' names a draft")
    with use_language("zh-CN"):
        zh = str(exc)
    assert zh.startswith(f"{draft}：不支持的 IFC 版本 'IFC4X3'（支持：IFC2X3, IFC4, IFC4X3_ADD2）")
    assert "'IFC4X3' 是草案" in zh and "IFC4X3_ADD2" in zh


def test_a_model_with_nothing_to_load_gives_its_skipped_reasons_in_the_readers_language(shared_data, store):
    path = shared_data / "ifc/validation/na-blt000-ifc2x3_no_building_elements.ifc"
    exc = _refusal(lambda: load_model(store, path, site_code="T"), NoElementsError)
    assert str(exc) == (f"{path}: no building elements or civil parts with geometry, and no alignment, to load "
                        "(7 of 7 products with a representation not loaded as surfaces: not physical 7 "
                        "(IfcStructuralCurveMember 3, IfcStructuralPointConnection 4))")
    with use_language("zh-CN"):
        assert str(exc) == (f"{path}：没有可载入的带几何的建筑构件或土木构件，也没有线形（7 个带表示的产品中有 7 "
                            "个未作为曲面载入：非实物 7 个（IfcStructuralCurveMember 3, "
                            "IfcStructuralPointConnection 4））")


def test_several_skipped_reasons_are_joined_in_the_readers_language(box_model, store):
    path = box_model("nothing-built.ifc", boxes=(("IfcOpeningElement", "O1", (0.0, 0.0, 0.0), (1.0, 2.0, 0.2)),
                                                 ("IfcAnnotation", "A1", (2.0, 0.0, 0.0), (1.0, 1.0, 0.1)),
                                                 ("IfcVirtualElement", "V1", (4.0, 0.0, 0.0), (1.0, 1.0, 0.1))))
    exc = _refusal(lambda: load_model(store, path, site_code="T"), NoElementsError)
    assert str(exc) == (f"{path}: no building elements or civil parts with geometry, and no alignment, to load "
                        "(3 of 3 products with a representation not loaded as surfaces: not built 2 "
                        "(IfcOpeningElement 1, IfcVirtualElement 1); not physical 1 (IfcAnnotation 1))")
    with use_language("zh-CN"):
        assert str(exc).endswith("（3 个带表示的产品中有 3 个未作为曲面载入：非实体构件 2 个（IfcOpeningElement 1, "
                                 "IfcVirtualElement 1）；非实物 1 个（IfcAnnotation 1））")


def test_a_model_with_no_products_says_so_in_chinese(shared_data, store):
    path = shared_data / "ifc/validation/pass-ifc101-IFC4X3_ADD2.ifc"
    exc = _refusal(lambda: load_model(store, path, site_code="T"), NoElementsError)
    assert str(exc) == (f"{path}: no building elements or civil parts with geometry, and no alignment, to load "
                        "(0 products with a representation)")
    assert exc.text("zh-CN") == f"{path}：没有可载入的带几何的建筑构件或土木构件，也没有线形（带表示的产品 0 个）"


def test_a_schedule_map_with_a_bad_globalid_names_the_line_in_both_languages(shared_data, store, tmp_path):
    lines = (shared_data / "schedule/schependomlaan/eventlog_IFC_schependomlaan_asplanned.csv") \
        .read_text(encoding="utf-8-sig").splitlines()
    good = lines[2].split(",")[1]
    lines[2] = lines[2].replace(good, "3iHy1LOhf", 1)
    bad = tmp_path / "eventlog.csv"
    bad.write_text("\n".join(lines[:50]) + "\n", encoding="utf-8")
    exc = _refusal(lambda: import_schedule_file(store, bad, site_code="T"))
    assert str(exc) == f"{bad}: line 3: '3iHy1LOhf' is not an IFC GlobalId (22 characters)"
    with use_language("zh-CN"):
        assert str(exc) == f"{bad}：第 3 行：'3iHy1LOhf' 不是 IFC GlobalId（应为 22 个字符）"
    assert store.scalar("SELECT count(*) FROM schedules") == 0
