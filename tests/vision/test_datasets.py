"""vision.datasets and vision.formats: reading, checking, merging, splitting and writing detection datasets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sitetwin.vision.datasets import (
    dataset_hash,
    load_class_map,
    merge,
    read_yolo,
    remap,
    require_usable,
    split,
    statistics,
    write_yolo,
)
from sitetwin.vision.errors import DatasetError
from sitetwin.vision.formats import read_coco, read_voc


def _tiny_yolo(root: Path, hardhat: Path, lines_by_image: dict[str, list[str]], names=("a", "b")) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    sources = sorted((hardhat / "images").iterdir())
    for (stem, lines), src in zip(lines_by_image.items(), sources):
        shutil.copyfile(src, root / "images" / f"{stem}.jpg")
        (root / "labels" / f"{stem}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text(json.dumps({"names": list(names)}))
    return root


def test_the_hardhat_set_reads_all_50_images_and_reports_each_polygon_line_as_a_warning(hardhat):
    d = read_yolo(hardhat)
    assert d.names == ("hard_hat", "no_hard_hat", "no_head_wear", "person")
    assert len(d.samples) == 50
    assert not d.errors
    polygons = [i for i in d.issues if i.kind == "polygon"]
    assert len(polygons) == len(d.warnings) == 33
    # the polygon lines of one file, counted independently, become that many boxes
    f = hardhat / "labels" / "006172_jpg.rf.f37548615e8dd71a3c49cbb68ac7df64.txt"
    rows = [line.split() for line in f.read_text().splitlines() if line.strip()]
    assert sum(len(r) > 5 for r in rows) == sum(i.file == str(f) for i in polygons)
    sample = next(s for s in d.samples if s.image.stem == f.stem)
    assert len(sample.boxes) == len(rows)
    # the second line is a polygon: its box is the polygon's extent
    xy = np.asarray(rows[1][1:], float).reshape(-1, 2)
    expect = [(xy[:, 0].min() + xy[:, 0].max()) / 2, (xy[:, 1].min() + xy[:, 1].max()) / 2,
              np.ptp(xy[:, 0]), np.ptp(xy[:, 1])]
    np.testing.assert_allclose(sample.boxes[1], expect, atol=1e-12)


def test_statistics_of_the_hardhat_set_count_every_instance_once(hardhat):
    d = read_yolo(hardhat)
    st = statistics(d)
    assert st.images == 50 and st.background_images == 0
    assert st.instances == sum(v["instances"] for v in st.per_class.values()) == d.instance_count
    assert st.per_class["person"]["images"] == 50
    assert sum(st.box_sizes.values()) == st.instances
    assert st.issues_by_kind == {"polygon": 33}
    # every label line (box or polygon) is one instance
    lines = sum(len([line for line in p.read_text().splitlines() if line.strip()])
                for p in (hardhat / "labels").glob("*.txt"))
    assert st.instances == lines


def test_a_label_outside_the_unit_square_is_an_error_naming_its_file_and_line(tmp_path, hardhat):
    root = _tiny_yolo(tmp_path / "ds", hardhat, {"x": ["0 0.5 0.5 0.2 0.2", "1 0.95 0.5 0.2 0.2"]})
    d = read_yolo(root)
    assert [(i.kind, i.line) for i in d.errors] == [("out_of_range", 2)]
    assert d.instance_count == 1
    with pytest.raises(DatasetError, match=r"x\.txt:2: box .* outside \[0, 1\]"):
        require_usable(d)


def test_malformed_lines_and_unknown_class_ids_are_errors_with_their_line_numbers(tmp_path, hardhat):
    root = _tiny_yolo(tmp_path / "ds", hardhat, {"x": ["0 0.5 0.5 0.2", "7 0.5 0.5 0.2 0.2", "a b c d e",
                                                       "1 0.5 0.5 0.0 0.2", "1 0.5 0.5 0.1 0.1"]})
    d = read_yolo(root)
    assert [(i.kind, i.line) for i in d.errors] == [("malformed", 1), ("bad_class", 2), ("malformed", 3),
                                                    ("degenerate", 4)]
    assert d.instance_count == 1


def test_an_empty_dataset_is_refused_clearly(tmp_path, hardhat):
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "data.yaml").write_text("names: [a]\n")
    with pytest.raises(DatasetError, match="empty dataset: no images"):
        read_yolo(tmp_path / "empty")
    root = _tiny_yolo(tmp_path / "unlabelled", hardhat, {"x": [], "y": []})
    with pytest.raises(DatasetError, match="empty dataset: 2 images but not one labelled box"):
        require_usable(read_yolo(root))


def test_a_corrupt_image_is_reported_and_skipped(tmp_path, hardhat):
    root = _tiny_yolo(tmp_path / "ds", hardhat, {"good": ["0 0.5 0.5 0.2 0.2"], "bad": ["0 0.5 0.5 0.2 0.2"]})
    (root / "images" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    d = read_yolo(root)
    assert [s.image.stem for s in d.samples] == ["good"]
    assert [(Path(i.file).name, i.kind) for i in d.errors] == [("bad.jpg", "corrupt_image")]


def _hardhat_as_coco(hardhat: Path, out: Path) -> tuple[Path, dict]:
    d = read_yolo(hardhat)
    images, anns = [], []
    truth = {}
    for i, s in enumerate(d.samples):
        W, H = s.size
        images.append({"id": i + 1, "file_name": s.image.name, "width": W, "height": H})
        truth[s.image.name] = (s.classes, s.boxes)
        for c, (cx, cy, w, h) in zip(s.classes, s.boxes):
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(c) + 10, "iscrowd": 0,
                         "bbox": [(cx - w / 2) * W, (cy - h / 2) * H, w * W, h * H]})
    anns.append({"id": 9999, "image_id": 1, "category_id": 13, "iscrowd": 1, "bbox": [0, 0, 10, 10]})
    cats = [{"id": 10 + i, "name": n} for i, n in enumerate(d.names)]
    path = out / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return path, truth


def test_coco_boxes_read_back_as_the_yolo_boxes_they_were_made_from(tmp_path, hardhat):
    path, truth = _hardhat_as_coco(hardhat, tmp_path)
    d = read_coco(path, hardhat / "images")
    assert d.names == ("hard_hat", "no_hard_hat", "no_head_wear", "person")
    assert len(d.samples) == 50
    assert [i.kind for i in d.issues] == ["crowd"]
    for s in d.samples:
        classes, boxes = truth[s.image.name]
        assert s.classes.tolist() == classes.tolist()
        np.testing.assert_allclose(s.boxes, boxes, atol=1e-9)


def test_a_coco_file_pointing_at_missing_images_reports_them(tmp_path, hardhat):
    path, _ = _hardhat_as_coco(hardhat, tmp_path)
    d = read_coco(path, tmp_path)          # wrong image folder
    assert not d.samples
    assert len([i for i in d.errors if i.kind == "missing_image"]) == 50
    with pytest.raises(DatasetError, match="empty dataset"):
        require_usable(d)


def test_voc_boxes_read_back_within_one_pixel(tmp_path, hardhat):
    d = read_yolo(hardhat)
    voc = tmp_path / "voc"
    (voc / "Annotations").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    for s in d.samples[:10]:
        W, H = s.size
        shutil.copyfile(s.image, voc / "JPEGImages" / s.image.name)
        objs = []
        for c, (cx, cy, w, h) in zip(s.classes, s.boxes):
            # VOC: 1-based inclusive pixel indices
            x1, y1 = round((cx - w / 2) * W) + 1, round((cy - h / 2) * H) + 1
            x2, y2 = round((cx + w / 2) * W), round((cy + h / 2) * H)
            objs.append(f"<object><name>{d.names[c]}</name><difficult>0</difficult><bndbox><xmin>{x1}</xmin>"
                        f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")
        (voc / "Annotations" / f"{s.image.stem}.xml").write_text(
            f"<annotation><filename>{s.image.name}</filename><size><width>{W}</width><height>{H}</height>"
            f"<depth>3</depth></size>{''.join(objs)}</annotation>")
    v = read_voc(voc, names=list(d.names))
    assert not v.issues and len(v.samples) == 10
    for s, orig in zip(v.samples, d.samples[:10]):
        W, H = s.size
        assert s.classes.tolist() == orig.classes.tolist()
        np.testing.assert_allclose(s.boxes[:, [0, 2]] * W, orig.boxes[:, [0, 2]] * W, atol=1.0)
        np.testing.assert_allclose(s.boxes[:, [1, 3]] * H, orig.boxes[:, [1, 3]] * H, atol=1.0)


def test_merging_maps_every_source_class_onto_the_site_taxonomy(tmp_path, hardhat):
    cm = load_class_map()
    assert cm.names[:4] == ("person", "hard_hat", "head", "vest")
    hh = read_yolo(hardhat)
    path, _ = _hardhat_as_coco(hardhat, tmp_path)
    coco = read_coco(path, hardhat / "images")
    coco = type(coco)(("Helmet", "No-Helmet", "bare head", "Worker"), coco.samples, coco.root, coco.issues)
    merged = merge([hh, coco], cm)
    st = statistics(merged)
    src = statistics(hh).per_class
    assert len(merged.samples) == 100
    assert st.per_class["hard_hat"]["instances"] == 2 * src["hard_hat"]["instances"]
    assert st.per_class["head"]["instances"] == 2 * (src["no_hard_hat"]["instances"] + src["no_head_wear"]["instances"])
    assert st.per_class["person"]["instances"] == 2 * src["person"]["instances"]
    assert st.per_class["vest"]["instances"] == 0


def test_a_class_the_map_does_not_know_is_named_unless_dropped(tmp_path, hardhat):
    hh = read_yolo(hardhat)
    odd = type(hh)(("hard_hat", "no_hard_hat", "tool_belt", "person"), hh.samples, hh.root, hh.issues)
    with pytest.raises(DatasetError, match="'tool_belt' are not in the class map"):
        remap(odd, load_class_map())
    dropped = remap(odd, load_class_map(), drop_unknown=True)
    assert dropped.instance_count == hh.instance_count - statistics(hh).per_class["no_head_wear"]["instances"]
    assert any(i.kind == "unknown_class" for i in dropped.warnings)


def test_a_class_map_that_maps_onto_a_missing_name_is_refused(tmp_path):
    bad = tmp_path / "map.yaml"
    bad.write_text("names: [person, hard_hat]\nmap:\n  helmet: hardhat\n")
    with pytest.raises(DatasetError, match="'hardhat', which is not in `names`"):
        load_class_map(bad)
    ok = tmp_path / "ok.yaml"
    ok.write_text("names: [person, Hard Hat]\nmap:\n  Helmet: hard-hat\n  vest: null\n")
    cm = load_class_map(ok)
    assert cm.target("HELMET") == "hard_hat" and cm.target("vest") is None and cm.target("person") == "person"


def test_a_split_is_the_same_for_the_same_seed_whatever_the_reading_order(hardhat):
    d = read_yolo(hardhat)
    a = split(d, (0.7, 0.2, 0.1), seed=3)
    shuffled = type(d)(d.names, tuple(reversed(d.samples)), d.root, d.issues)
    b = split(shuffled, (0.7, 0.2, 0.1), seed=3)
    assign_a = {s.image.name: s.split for s in a.samples}
    assert assign_a == {s.image.name: s.split for s in b.samples}
    assert a.splits() == {"train": 35, "val": 10, "test": 5}
    other = {s.image.name: s.split for s in split(d, (0.7, 0.2, 0.1), seed=4).samples}
    assert sum(assign_a[k] != other[k] for k in assign_a) > 10


def test_a_tiny_dataset_still_gets_one_image_in_every_requested_split(tmp_path, hardhat):
    root = _tiny_yolo(tmp_path / "ds", hardhat, {f"i{k}": ["0 0.5 0.5 0.2 0.2"] for k in range(3)})
    assert split(read_yolo(root), (0.9, 0.05, 0.05)).splits() == {"train": 1, "val": 1, "test": 1}
    with pytest.raises(DatasetError, match="sum to 1"):
        split(read_yolo(root), (0.5, 0.2, 0.1))


def test_a_written_dataset_reads_back_the_same_and_its_hash_follows_its_content(tmp_path, hardhat):
    d = split(read_yolo(hardhat), (0.8, 0.2, 0.0), seed=0)
    yaml_path = write_yolo(d, tmp_path / "out")
    back = read_yolo(yaml_path)
    assert back.splits() == {"train": 40, "val": 10}
    assert not back.issues                      # polygons were written as boxes
    by_name = {s.image.name: s for s in d.samples}
    for s in back.samples:
        np.testing.assert_allclose(s.boxes, by_name[s.image.name].boxes, atol=1e-6)
    h1 = dataset_hash(tmp_path / "out")
    assert h1 == dataset_hash(tmp_path / "out")
    label = next((tmp_path / "out" / "labels" / "val").glob("*.txt"))
    label.write_text(label.read_text().replace("0.", "0.1", 1))
    assert dataset_hash(tmp_path / "out") != h1
    with pytest.raises(DatasetError, match="not empty"):
        write_yolo(d, tmp_path / "out")
