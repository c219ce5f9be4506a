"""A BCF export's and import's warnings read in the reader's language; their str stays the English it
always was (what --json and the callers see)."""

from __future__ import annotations

from sitetwin.data.errors import Note
from sitetwin.data.i18n import use_language
from sitetwin.oversight.bcf import export_bcf, import_bcf, read_bcf
from sitetwin.oversight.findings import get_finding, raise_finding
from sitetwin.oversight.scope import Scope

SYSTEM = Scope.system()


def unposed_panorama(store, tmp_path) -> str:
    """A plain 2:1 image added to WH-JA-1 with no pose; returns its pano_id."""
    from PIL import Image

    from sitetwin.panorama.pano_store import add_panorama

    path = tmp_path / "unposed.jpg"
    Image.new("RGB", (512, 256), (128, 128, 128)).save(path, quality=80)
    report = add_panorama(store, path, site_code="WH-JA-1")
    assert report.pose_source == "none"
    return report.pano_id


def test_a_finding_whose_panorama_has_no_pose_exports_with_a_warning_in_the_readers_language(sites_store,
                                                                                             tmp_path):
    pano_id = unposed_panorama(sites_store, tmp_path)
    fid = raise_finding(sites_store, site_code="WH-JA-1", category="safety", severity="high", title="No helmet",
                        evidence={"panorama": {"pano_id": pano_id, "yaw_deg": 90.0}})
    ref = get_finding(sites_store, SYSTEM, fid).ref
    report = export_bcf(sites_store, SYSTEM, tmp_path / "f.bcfzip", finding_ids=[fid], snapshots=False)
    assert report.warnings == (f"finding {ref}: its panorama has no pose; it gets a 3D view instead",)
    assert isinstance(report.warnings[0], Note)
    assert [t.title for t in read_bcf(tmp_path / "f.bcfzip").topics] == ["No helmet"]     # exported all the same
    with use_language("zh-CN"):
        assert str(report.warnings[0]) == f"问题 {ref}：其全景没有位姿；改用三维视图"


def test_a_bcf_file_whose_components_are_not_in_the_site_imports_with_a_warning_in_the_readers_language(
        sites_store, shared_data):
    report = import_bcf(sites_store, SYSTEM, shared_data / "bcf/schependomlaan/ROOT-Vebo_interne_modelkwaliteit.bcfzip",
                        site_code="WH-JA-1")
    assert report.components == 2 and report.components_in_model == 0
    assert report.warnings == ("none of the 2 component GlobalIds is an element of site WH-JA-1's current models; "
                               "load the models the BCF file refers to",)
    with use_language("zh-CN"):
        assert f"{report.warnings[0]}" == ("2 个构件 GlobalId 均不是工地 WH-JA-1 当前模型中的构件；"
                                           "请加载 BCF 文件所引用的模型")
