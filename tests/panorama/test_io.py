"""Reading panoramas: the real photo, GPano XMP and EXIF time, bad files, E57 images2D with a pose."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from PIL import Image

from sitetwin.panorama.camera import pose_matrix
from sitetwin.panorama.errors import PanoramaImageError
from sitetwin.panorama.io import parse_gpano, read_e57_panoramas, read_panorama, write_e57_panorama

XMP = b"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:GPano="http://ns.google.com/photos/1.0/panorama/"
 GPano:ProjectionType="equirectangular" GPano:UsePanoramaViewer="True" GPano:PoseHeadingDegrees="72.5"
 GPano:FullPanoWidthPixels="512" GPano:FullPanoHeightPixels="256" GPano:CroppedAreaImageWidthPixels="512"
 GPano:CroppedAreaImageHeightPixels="200" GPano:CroppedAreaLeftPixels="0" GPano:CroppedAreaTopPixels="28">
<GPano:FirstPhotoDate>2026-04-02T08:15:00Z</GPano:FirstPhotoDate></rdf:Description></rdf:RDF></x:xmpmeta>"""


def _image(w, h, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_the_real_panorama_reads_as_a_4096_by_2048_image(shared_data):
    pano = read_panorama(shared_data / "panorama" / "examplepano.jpg")
    assert (pano.width, pano.height) == (4096, 2048)
    assert pano.pixels.dtype == np.uint8 and pano.pixels.shape == (2048, 4096, 3)
    assert len(pano.sha256) == 64
    assert pano.captured_at is None and pano.gpano == {}      # the file carries no metadata


def test_exif_capture_time_is_read(tmp_path):
    exif = Image.Exif()
    exif[0x0110] = "Theta Z1"
    exif.get_ifd(0x8769)[36867] = "2026:03:21 14:05:09"
    path = tmp_path / "exif.jpg"
    Image.fromarray(_image(256, 128)).save(path, exif=exif)
    pano = read_panorama(path)
    assert pano.captured_at == dt.datetime(2026, 3, 21, 14, 5, 9)
    assert pano.time_source == "exif"
    assert pano.exif["Model"] == "Theta Z1"


def test_gpano_xmp_is_read_and_a_cropped_panorama_fills_its_full_canvas(tmp_path):
    path = tmp_path / "cropped.jpg"
    Image.fromarray(_image(512, 200)).save(path, xmp=XMP)
    pano = read_panorama(path)
    assert (pano.width, pano.height) == (512, 256)
    assert pano.gpano["PoseHeadingDegrees"] == 72.5
    assert pano.gpano["ProjectionType"] == "equirectangular"
    assert pano.captured_at == dt.datetime(2026, 4, 2, 8, 15) and pano.time_source == "xmp"
    assert pano.pixels[:28].max() == 0 and pano.pixels[228:].max() == 0     # uncovered rows stay black
    assert pano.pixels[28:228].mean() > 50


def test_parse_gpano_reads_attributes_and_elements():
    fields = parse_gpano(XMP)
    assert fields["FullPanoWidthPixels"] == 512 and fields["FirstPhotoDate"] == "2026-04-02T08:15:00Z"


def test_a_png_panorama_reads_too(tmp_path):
    path = tmp_path / "p.png"
    Image.fromarray(_image(200, 100)).save(path)
    assert read_panorama(path).pixels.shape == (100, 200, 3)


def test_an_image_that_is_not_two_to_one_is_refused(tmp_path):
    path = tmp_path / "photo.jpg"
    Image.fromarray(_image(400, 300)).save(path)
    with pytest.raises(PanoramaImageError, match=r"photo.jpg: 400x300 is not an equirectangular panorama .*2:1"):
        read_panorama(path)


def test_a_corrupt_jpeg_is_refused(tmp_path):
    good = io.BytesIO()
    Image.fromarray(_image(256, 128)).save(good, format="JPEG")
    data = bytearray(good.getvalue())
    data[2:40] = b"\x00" * 38           # destroy the markers after SOI
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(PanoramaImageError, match="corrupt.jpg"):
        read_panorama(path)
    (tmp_path / "text.jpg").write_text("not an image at all")
    with pytest.raises(PanoramaImageError, match="not a JPEG or PNG"):
        read_panorama(tmp_path / "text.jpg")


def test_a_truncated_file_is_refused(shared_data, tmp_path):
    data = (shared_data / "panorama" / "examplepano.jpg").read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(PanoramaImageError, match="truncated.jpg: the image is truncated"):
        read_panorama(path)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(PanoramaImageError, match="empty"):
        read_panorama(tmp_path / "empty.jpg")
    with pytest.raises(PanoramaImageError, match="no such file"):
        read_panorama(tmp_path / "missing.jpg")


def test_an_e57_spherical_panorama_reads_back_with_its_pose_and_time(tmp_path):
    T = pose_matrix([4.0, -2.0, 1.7], 33.0, 2.0, -1.0)
    image = np.asarray(Image.fromarray(_image(64, 32)).resize((512, 256)))
    path = write_e57_panorama(tmp_path / "station.e57", image, T, name="station 7",
                              captured_at=dt.datetime(2026, 5, 4, 9, 30))
    [pano] = read_e57_panoramas(path)
    assert pano.name == "station 7"
    assert (pano.width, pano.height) == (512, 256)
    np.testing.assert_allclose(pano.T_file_from_camera, T, atol=1e-12)
    assert abs((pano.captured_at - dt.datetime(2026, 5, 4, 9, 30)).total_seconds()) < 1e-3
    assert pano.time_source == "e57"
    assert np.abs(pano.pixels.astype(float) - image).mean() < 6      # JPEG inside the E57
    assert pano.source.endswith("station.e57#images2D/0")


def test_the_shared_e57_visual_reference_image_is_not_taken_for_a_panorama(shared_data):
    # pumpAVisualReferenceImage.e57 holds one 3072x2304 visualReferenceRepresentation, no spherical image
    with pytest.raises(PanoramaImageError,
                       match=r"no spherical panorama.*'pumpVisual': visualReferenceRepresentation 3072x2304"):
        read_e57_panoramas(shared_data / "pointcloud" / "e57" / "pumpAVisualReferenceImage.e57")


def test_an_e57_without_images_or_a_broken_e57_is_refused(shared_data, tmp_path):
    with pytest.raises(PanoramaImageError, match="images2D"):
        read_e57_panoramas(shared_data / "pointcloud" / "e57" / "testWithNormals.e57")
    (tmp_path / "broken.e57").write_bytes(b"ASTM-E57" + b"\x00" * 100)
    with pytest.raises(PanoramaImageError, match="not a readable E57"):
        read_e57_panoramas(tmp_path / "broken.e57")
