"""Panorama files: equirectangular JPEG/PNG with GPano XMP and EXIF time, and E57 ``images2D`` panoramas.

Readers check what they read and raise :class:`PanoramaImageError` naming the file and the
problem (not 2:1, corrupt, truncated, an E57 image that is not spherical), never a bare
decoder traceback.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io as _io
import math
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sitetwin.data.errors import Phrase
from sitetwin.data.i18n import N_
from sitetwin.panorama.errors import PanoramaImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
RATIO_TOLERANCE_PX = 1          # width may differ from 2 x height by this much (odd exports)
MAX_PIXELS = 30000 * 15000       # refuse decompression bombs beyond a 30k x 15k panorama


@dataclass(frozen=True)
class PanoramaImage:
    """An equirectangular image read from a file, with what its metadata says.

    pixels : (h, 2h, 3) uint8 RGB (a GPano-cropped image is placed into its full canvas)
    captured_at : capture time (EXIF DateTimeOriginal, else GPano, else E57), naive local time
    time_source : 'exif' | 'xmp' | 'e57' | None
    gpano : GPano XMP fields as read (numbers parsed), e.g. PoseHeadingDegrees
    T_file_from_camera : (4, 4) pose written in the file (E57 images2D), else None
    """

    path: Path
    pixels: np.ndarray
    sha256: str
    captured_at: _dt.datetime | None = None
    time_source: str | None = None
    gpano: dict[str, Any] = field(default_factory=dict)
    exif: dict[str, Any] = field(default_factory=dict)
    T_file_from_camera: np.ndarray | None = None
    source: str = ""                 # where it came from: the path, or 'file.e57#images2D/3'
    name: str | None = None
    embedded: bytes | None = None    # the encoded image when it lives inside another file (E57)
    embedded_suffix: str = ".jpg"

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def read_panorama(path: str | Path) -> PanoramaImage:
    """Read an equirectangular JPEG or PNG, checking it is whole and 2:1.

    >>> pano = read_panorama("site/pano-001.jpg")          # doctest: +SKIP
    >>> pano.width, pano.height, pano.captured_at
    """
    path = Path(path)
    if not path.exists():
        raise PanoramaImageError(N_("{path}: no such file"), path=path)
    if path.is_dir():
        raise PanoramaImageError(N_("{path}: is a folder; give the panorama image files"), path=path)
    data = path.read_bytes()
    return decode_panorama(data, path, source=str(path))


def decode_panorama(data: bytes, path: Path, *, source: str, name: str | None = None,
                    T_file_from_camera: np.ndarray | None = None) -> PanoramaImage:
    """Decode image bytes as a panorama (see :func:`read_panorama`); ``path`` names it in errors."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise PanoramaImageError(N_("{path}: the file is empty"), path=path)
    try:
        with Image.open(_io.BytesIO(data)) as im:
            fmt = im.format
            if fmt not in ("JPEG", "PNG", "MPO"):
                raise PanoramaImageError(N_("{path}: is a {fmt} image; panoramas are read from JPEG or PNG"),
                                         path=path, fmt=fmt)
            if im.width * im.height > MAX_PIXELS:
                raise PanoramaImageError(N_("{path}: {width}x{height} is larger than sitetwin reads "
                                            "({mpx} Mpx); downscale it first"),
                                         path=path, width=im.width, height=im.height, mpx=MAX_PIXELS // 1_000_000)
            exif = _exif_fields(im)
            xmp = _xmp_packet(data, im)
            im.load()   # decodes everything: a truncated or corrupt stream fails here
            pixels = np.asarray(im.convert("RGB"))
    except PanoramaImageError:
        raise
    except UnidentifiedImageError:
        raise PanoramaImageError(N_("{path}: not a JPEG or PNG image (unrecognised or corrupt header)"),
                                 path=path) from None
    except (OSError, SyntaxError, ValueError) as exc:
        text = str(exc)
        if "truncated" in text.lower():
            raise PanoramaImageError(N_("{path}: the image is truncated and cannot be decoded ({reason}); "
                                        "copy it again from the camera"), path=path, reason=text) from None
        raise PanoramaImageError(N_("{path}: the image is corrupt and cannot be decoded ({reason}); "
                                    "copy it again from the camera"), path=path, reason=text) from None
    gpano = parse_gpano(xmp) if xmp else {}
    pixels = _full_canvas(pixels, gpano, path)
    h, w = pixels.shape[:2]
    if abs(w - 2 * h) > RATIO_TOLERANCE_PX:
        raise PanoramaImageError(
            N_("{path}: {width}x{height} is not an equirectangular panorama (width must be twice the height, 2:1); "
               "export the full 360x180 degree panorama from the camera's software"), path=path, width=w, height=h)
    if w != 2 * h:
        pixels = pixels[:, : 2 * h] if w > 2 * h else np.concatenate([pixels, pixels[:, :1]], axis=1)
    captured, time_source = None, None
    if exif.get("DateTimeOriginal"):
        captured, time_source = exif["DateTimeOriginal"], "exif"
    elif gpano.get("FirstPhotoDate"):
        captured, time_source = _parse_time(str(gpano["FirstPhotoDate"])), "xmp"
        if captured is None:
            time_source = None
    return PanoramaImage(path=path, pixels=np.ascontiguousarray(pixels), sha256=hashlib.sha256(data).hexdigest(),
                         captured_at=captured, time_source=time_source, gpano=gpano,
                         exif={k: v for k, v in exif.items() if k != "DateTimeOriginal"},
                         T_file_from_camera=T_file_from_camera, source=source, name=name)


def _exif_fields(im) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        exif = im.getexif()
    except Exception:   # a damaged EXIF block loses the metadata, not the image
        return out
    sub = exif.get_ifd(0x8769) if exif else {}
    when = sub.get(36867) or sub.get(36868) or exif.get(306)     # DateTimeOriginal, Digitized, DateTime
    if when:
        out["DateTimeOriginal"] = _parse_time(str(when))
    for tag, key in ((271, "Make"), (272, "Model"), (305, "Software")):
        if exif.get(tag):
            out[key] = str(exif.get(tag)).strip("\x00 ")
    return out


def _parse_time(text: str) -> _dt.datetime | None:
    text = text.strip().strip("\x00")
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f",
                "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%d"):
        try:
            value = _dt.datetime.strptime(text.replace("Z", "+0000") if "%z" in fmt else text, fmt)
        except ValueError:
            continue
        return value.astimezone(_dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    return None


def _xmp_packet(data: bytes, im) -> bytes | None:
    start = data.find(b"<x:xmpmeta")
    if start >= 0:
        end = data.find(b"</x:xmpmeta>", start)
        if end > 0:
            return data[start:end + len(b"</x:xmpmeta>")]
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    return xmp or None


_GPANO_ATTR = re.compile(rb'GPano:(\w+)\s*=\s*"([^"]*)"')
_GPANO_ELEM = re.compile(rb"<GPano:(\w+)>([^<]*)</GPano:\1>")


def parse_gpano(xmp: bytes) -> dict[str, Any]:
    """GPano fields of an XMP packet (attribute or element form), numbers parsed."""
    fields: dict[str, Any] = {}
    for m in list(_GPANO_ATTR.finditer(xmp)) + list(_GPANO_ELEM.finditer(xmp)):
        key, raw = m.group(1).decode(), m.group(2).decode("utf-8", "replace").strip()
        try:
            value: Any = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                value = raw
        fields[key] = value
    return fields


def _full_canvas(pixels: np.ndarray, gpano: dict[str, Any], path: Path) -> np.ndarray:
    """Place a GPano-cropped panorama into its full 360 x 180 canvas (uncovered pixels black)."""
    full_w, full_h = gpano.get("FullPanoWidthPixels"), gpano.get("FullPanoHeightPixels")
    crop_w, crop_h = gpano.get("CroppedAreaImageWidthPixels"), gpano.get("CroppedAreaImageHeightPixels")
    if not (isinstance(full_w, int) and isinstance(full_h, int)
            and isinstance(crop_w, int) and isinstance(crop_h, int)):
        return pixels
    if (crop_w, crop_h) == (full_w, full_h):
        return pixels
    left, top = int(gpano.get("CroppedAreaLeftPixels", 0)), int(gpano.get("CroppedAreaTopPixels", 0))
    h, w = pixels.shape[:2]
    if (w, h) != (crop_w, crop_h) or left + w > full_w or top + h > full_h or full_w != 2 * full_h:
        raise PanoramaImageError(N_("{path}: its GPano crop ({crop_w}x{crop_h} at {left},{top} in "
                                    "{full_w}x{full_h}) does not match the {width}x{height} image"),
                                 path=path, crop_w=crop_w, crop_h=crop_h, left=left, top=top, full_w=full_w,
                                 full_h=full_h, width=w, height=h)
    canvas = np.zeros((full_h, full_w, 3), np.uint8)
    canvas[top:top + h, left:left + w] = pixels
    return canvas


def heading_rotation(gpano: dict[str, Any]) -> np.ndarray | None:
    """Camera rotation from GPano PoseHeading/Pitch/Roll (heading clockwise from north), or None.

    GPano headings are compass bearings of the image centre; in a site frame whose +y is grid
    north that is yaw = 90 - heading. Used as a starting orientation only: the model frame's
    north must be known for it to mean anything.
    """
    from sitetwin.panorama.camera import rotation_from_ypr

    if "PoseHeadingDegrees" not in gpano:
        return None
    heading = float(gpano["PoseHeadingDegrees"])
    return rotation_from_ypr(90.0 - heading, float(gpano.get("PosePitchDegrees", 0.0)),
                             float(gpano.get("PoseRollDegrees", 0.0)))


# --- E57 -------------------------------------------------------------------------------------

def _e57_nodes():
    import pye57.libe57 as lib

    return lib, {lib.E57_STRUCTURE: lib.StructureNode, lib.E57_VECTOR: lib.VectorNode,
                 lib.E57_STRING: lib.StringNode, lib.E57_FLOAT: lib.FloatNode, lib.E57_INTEGER: lib.IntegerNode,
                 lib.E57_BLOB: lib.BlobNode, lib.E57_SCALED_INTEGER: lib.ScaledIntegerNode}


def _child(node, name: str):
    """A named child downcast to its type, or None."""
    lib, kinds = _e57_nodes()
    if not node.isDefined(name):
        return None
    found = node.get(name)
    return kinds.get(found.type(), lambda n: n)(found)


def _value(node, name: str, default=None):
    found = _child(node, name)
    return default if found is None or not hasattr(found, "value") else found.value()


def read_e57_panoramas(path: str | Path) -> list[PanoramaImage]:
    """The spherical panoramas in an E57 file's ``images2D``, with their poses (file frame).

    Each image's ``T_file_from_camera`` comes from its ``pose`` (E57 rotation quaternion w,x,y,z
    and translation, metres); sitetwin reads the spherical image's frame as its own panorama
    camera frame (centre column = +x, azimuth anticlockwise about +z). Images stored as
    pinhole, cylindrical or visual-reference representations are not panoramas: a file holding
    only those raises an error that lists them.
    """
    import pye57

    path = Path(path)
    if not path.exists():
        raise PanoramaImageError(N_("{path}: no such file"), path=path)
    try:
        e57 = pye57.E57(str(path))
    except Exception as exc:
        raise PanoramaImageError(N_("{path}: not a readable E57 file ({reason})"), path=path,
                                 reason=(str(exc).splitlines() or [""])[0]) from None
    found, skipped = [], []
    try:
        root = e57.image_file.root()
        if not root.isDefined("images2D"):
            raise PanoramaImageError(N_("{path}: the E57 file holds no images2D section (no panoramas)"), path=path)
        images = _child(root, "images2D")
        for i in range(images.childCount()):
            lib, kinds = _e57_nodes()
            node = lib.StructureNode(images.get(i))
            name = _value(node, "name") or f"image {i}"
            rep = _child(node, "sphericalRepresentation")
            if rep is None:
                kinds_present = [k for k in ("pinholeRepresentation", "cylindricalRepresentation",
                                             "visualReferenceRepresentation") if node.isDefined(k)]
                rep_any = _child(node, kinds_present[0]) if kinds_present else None
                size = (f" {_value(rep_any, 'imageWidth')}x{_value(rep_any, 'imageHeight')}" if rep_any is not None
                        else "")
                skipped.append(Phrase(N_("images2D/{i} {name!r}: {kinds}{size}"), i=i, name=name, size=size,
                                      kinds=", ".join(kinds_present) or Phrase(N_("no representation"))))
                continue
            blob = _child(rep, "jpegImage")
            suffix = ".jpg"
            if blob is None:
                blob, suffix = _child(rep, "pngImage"), ".png"
            if blob is None:
                raise PanoramaImageError(N_("{path}: images2D/{i} {name!r} has a spherical representation "
                                            "without a jpegImage or pngImage blob"), path=path, i=i, name=name)
            buf = np.zeros(blob.byteCount(), dtype=np.uint8)
            blob.read(buf, 0, blob.byteCount())
            T = _e57_pose(_child(node, "pose"))
            when = _child(node, "acquisitionDateTime")
            captured = _gps_time(_value(when, "dateTimeValue")) if when is not None else None
            image = decode_panorama(buf.tobytes(), Path(f"{path}#images2D/{i}"), source=f"{path}#images2D/{i}",
                                    name=str(name), T_file_from_camera=T)
            image = _replace(image, embedded=buf.tobytes(), embedded_suffix=suffix)
            if captured is not None:
                image = _replace(image, captured_at=captured, time_source="e57")
            found.append(image)
    finally:
        e57.close()
    if not found and not skipped:
        raise PanoramaImageError(N_("{path}: the E57 file's images2D section is empty (no panoramas)"), path=path)
    if not found:
        raise PanoramaImageError(N_("{path}: no spherical panorama in images2D; found only {found} "
                                    "(sitetwin imports sphericalRepresentation images)"),
                                 path=path, found=_joined(skipped))
    return found


def _joined(parts: list[Phrase]) -> Phrase | str:
    """Phrases joined with "; " in the language of the message they are part of."""
    if not parts:
        return ""
    out = parts[-1]
    for part in reversed(parts[:-1]):
        out = Phrase(N_("{first}; {rest}"), first=part, rest=out)
    return out


def _replace(image: PanoramaImage, **changes) -> PanoramaImage:
    from dataclasses import replace

    return replace(image, **changes)


def _e57_pose(node) -> np.ndarray:
    T = np.eye(4)
    if node is None:
        return T
    rot, tr = _child(node, "rotation"), _child(node, "translation")
    if rot is not None:
        w, x, y, z = (float(_value(rot, k, d)) for k, d in (("w", 1.0), ("x", 0.0), ("y", 0.0), ("z", 0.0)))
        T[:3, :3] = quaternion_to_matrix((w, x, y, z))
    if tr is not None:
        T[:3, 3] = [float(_value(tr, k, 0.0)) for k in ("x", "y", "z")]
    return T


def quaternion_to_matrix(q) -> np.ndarray:
    """(3, 3) rotation of a quaternion (w, x, y, z); normalised first."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def matrix_to_quaternion(R) -> np.ndarray:
    """(w, x, y, z) of a rotation matrix, w >= 0."""
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_quat()
    q = np.array([w, x, y, z])
    return q if w >= 0 else -q


_GPS_EPOCH = _dt.datetime(1980, 1, 6)
_GPS_LEAP_SECONDS = 18     # GPS - UTC since 2017


def _gps_time(seconds) -> _dt.datetime | None:
    if seconds is None or not math.isfinite(float(seconds)) or float(seconds) <= 0:
        return None
    return _GPS_EPOCH + _dt.timedelta(seconds=float(seconds) - _GPS_LEAP_SECONDS)


def _to_gps_seconds(when: _dt.datetime) -> float:
    return (when - _GPS_EPOCH).total_seconds() + _GPS_LEAP_SECONDS


def write_e57_panorama(path: str | Path, image: np.ndarray, T_file_from_camera=None, *, name: str = "pano",
                       captured_at: _dt.datetime | None = None, quality: int = 92) -> Path:
    """Write an E57 file whose ``images2D`` holds one spherical JPEG panorama with its pose.

    The inverse of :func:`read_e57_panoramas` (same frame conventions); used to exchange posed
    panoramas with scanner software and to make test files.
    """
    import pye57
    import pye57.libe57 as lib
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[1] != 2 * image.shape[0]:
        raise ValueError(f"image must be (h, 2h, 3), got {image.shape}")
    T = np.eye(4) if T_file_from_camera is None else np.asarray(T_file_from_camera, dtype=np.float64)
    buf = _io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    jpeg = np.frombuffer(buf.getvalue(), dtype=np.uint8).copy()
    path = Path(path)
    e57 = pye57.E57(str(path), mode="w")
    try:
        imf = e57.image_file
        root = imf.root()
        if root.isDefined("images2D"):      # pye57 writes an empty one with the header
            images = lib.VectorNode(root.get("images2D"))
        else:
            images = lib.VectorNode(imf, True)
            root.set("images2D", images)
        node = lib.StructureNode(imf)
        images.append(node)
        node.set("guid", lib.StringNode(imf, "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, str(path) + name)).upper() + "}"))
        node.set("name", lib.StringNode(imf, name))
        pose = lib.StructureNode(imf)
        node.set("pose", pose)
        rotation = lib.StructureNode(imf)
        pose.set("rotation", rotation)
        for key, value in zip("wxyz", matrix_to_quaternion(T[:3, :3])):
            rotation.set(key, lib.FloatNode(imf, float(value)))
        translation = lib.StructureNode(imf)
        pose.set("translation", translation)
        for key, value in zip("xyz", T[:3, 3]):
            translation.set(key, lib.FloatNode(imf, float(value)))
        if captured_at is not None:
            when = lib.StructureNode(imf)
            node.set("acquisitionDateTime", when)
            when.set("dateTimeValue", lib.FloatNode(imf, _to_gps_seconds(captured_at)))
            when.set("isAtomicClockReferenced", lib.IntegerNode(imf, 0, 0, 1))
        rep = lib.StructureNode(imf)
        node.set("sphericalRepresentation", rep)
        blob = lib.BlobNode(imf, len(jpeg))
        rep.set("jpegImage", blob)
        blob.write(jpeg, 0, len(jpeg))
        rep.set("imageWidth", lib.IntegerNode(imf, int(image.shape[1]), 0, 1 << 31))
        rep.set("imageHeight", lib.IntegerNode(imf, int(image.shape[0]), 0, 1 << 31))
        rep.set("pixelWidth", lib.FloatNode(imf, 2 * math.pi / image.shape[1]))
        rep.set("pixelHeight", lib.FloatNode(imf, math.pi / image.shape[0]))
    finally:
        e57.close()
    return path


def save_image(path: str | Path, pixels: np.ndarray, *, quality: int = 90) -> Path:
    """Write an RGB (or grey) uint8 array as JPEG or PNG by the file's suffix; folders are created."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(np.asarray(pixels))
    if path.suffix.lower() in (".jpg", ".jpeg"):
        im.save(path, quality=quality)
    else:
        im.save(path)
    return path
