"""Ray-cast renderers over a ModelMesh: synthetic panoramas and perspective photos with per-pixel ids.

Used by the demo (rendered site photos), by the benchmarks and tests (known poses, known
answers) and by ``vision`` (worker figures rendered into scenes as ``extra`` meshes, with
per-pixel ids from which labels follow). Images are shaded (Lambert with sun, ambient and a
weak headlight), textured (per-element procedural noise in model space, so texture sticks to
surfaces across views), hazed with distance and carry sensor noise: never flat colours.

Frames: the mesh and extras are in the site's local frame (metres); camera conventions are
those of :mod:`panorama.camera`. ``depth_m`` is the range along each pixel's ray (not a
z-depth), ``inf`` where no model or extra surface is hit (sky and ground are background).

>>> from panorama.camera import pose_matrix
>>> result = render_equirect(mesh, pose_matrix([6, 6, 1.6], yaw_deg=30), 2048, 1024)   # doctest: +SKIP
>>> result.image.shape, result.element_index.dtype
((1024, 2048, 3), dtype('int32'))
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sitetwin.panorama.camera import PerspectiveCamera, check_transform, pixel_bearings

RAY_CHUNK = 1 << 20          # rays per Open3D call: bounds peak memory, costs nothing in speed


@dataclass(frozen=True)
class RenderSettings:
    """How synthetic images look. Defaults give a daylight site photo."""

    ambient: float = 0.28                 # (0-1) light reaching every surface
    sun: float = 0.55                     # (0-1) strength of the directional sun
    sun_direction: tuple[float, float, float] = (0.45, 0.30, 0.84)   # (model frame) towards the sun
    headlight: float = 0.22               # (0-1) light from the camera: faces seen edge-on stay readable
    texture_amplitude: float = 0.22       # (fraction of albedo) contrast of the per-element texture
    texture_scale_m: float = 0.12         # (m) feature size of the fine texture; coarse blotches are 6x
    haze_m: float = 400.0                 # (m) range at which haze veils 63 % of a surface
    read_noise_dn: float = 2.0            # (8-bit DN) sensor read noise, standard deviation
    shot_noise: float = 0.12              # (DN per DN) shot-noise variance per unit signal
    gamma: float = 2.2                    # display gamma applied to linear radiance
    ground_z_m: float | None = None       # ground plane height (default: the model's lowest point)
    ground: bool = True                   # draw a textured ground plane below the horizon


DEFAULT_SETTINGS = RenderSettings()
DEFAULT_EXTRA_COLOR = (230, 120, 30)
_SKY_ZENITH = np.array([0.30, 0.48, 0.80])
_SKY_HORIZON = np.array([0.78, 0.82, 0.86])
_GROUND = np.array([0.40, 0.36, 0.31])


@dataclass(frozen=True)
class Extra:
    """An additional mesh rendered with the model (a worker figure, a skip, a crane hook).

    vertices : (n, 3) float32, site local frame, metres
    faces : (m, 3) int32
    face_part : (m,) int32, index into ``ids`` / ``colors`` (one part per id)
    ids : (p,) str, the label of each part (e.g. ``"worker-1/helmet"``)
    colors : (p, 3) uint8 base colour of each part
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_part: np.ndarray
    ids: tuple[str, ...]
    colors: np.ndarray

    @classmethod
    def from_mesh(cls, mesh: Any, id: str | None = None, color=None, *, ids: Sequence[str] | None = None,
                  colors=None) -> Extra:
        """Wrap a trimesh.Trimesh (one part) or a ModelMesh-like object (one part per element).

        ``id``/``color`` name and colour a single-part mesh; ``ids``/``colors`` give one per element
        of a ModelMesh-like mesh (default: its ``global_ids`` and one colour for all).
        """
        vertices = np.ascontiguousarray(np.asarray(mesh.vertices, dtype=np.float32))
        faces = np.ascontiguousarray(np.asarray(mesh.faces, dtype=np.int32))
        if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError("extra mesh: vertices must be (n, 3) and faces (m, 3)")
        if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise ValueError("extra mesh: faces index vertices that do not exist")
        face_element = getattr(mesh, "face_element", None)
        if face_element is not None:
            face_part = np.asarray(face_element, dtype=np.int32)
            names = tuple(str(g) for g in (ids if ids is not None else mesh.global_ids))
        else:
            face_part = np.zeros(len(faces), dtype=np.int32)
            names = (id or "extra",) if ids is None else tuple(ids)
        if len(face_part) != len(faces):
            raise ValueError("extra mesh: face_element must have one entry per face")
        if len(face_part) and face_part.max() >= len(names):
            raise ValueError(f"extra mesh: {len(names)} ids for parts up to {int(face_part.max())}")
        if colors is None:
            colors = [color if color is not None else DEFAULT_EXTRA_COLOR] * len(names)
        colors = np.asarray(colors, dtype=np.float64).reshape(-1, 3)
        if len(colors) != len(names):
            raise ValueError(f"extra mesh: {len(colors)} colours for {len(names)} parts")
        return cls(vertices, faces, face_part, names, np.clip(colors, 0, 255).astype(np.uint8))


def as_extras(extra: Sequence[Any] | None) -> list[Extra]:
    """Coerce a list of ``Extra``, trimesh or ModelMesh-like objects (ids default to ``extra-<i>``)."""
    out = []
    for i, e in enumerate(extra or ()):
        out.append(e if isinstance(e, Extra) else Extra.from_mesh(
            e, id=f"extra-{i}" if getattr(e, "face_element", None) is None else None))
    return out


@dataclass(frozen=True)
class Hits:
    """First hits of a batch of rays. Shapes follow the ray batch."""

    range_m: np.ndarray        # float32, inf where nothing is hit
    element: np.ndarray        # int32 model element index, -1 where none (or an extra is hit)
    extra: np.ndarray          # int32 index into RayScene.extra_ids, -1 where none
    normal: np.ndarray | None  # float32 (..., 3) geometric normal of the hit triangle (model frame)


class RayScene:
    """A model mesh plus extras in one Open3D ray-casting scene; build once, cast many times."""

    def __init__(self, mesh: Any, extra: Sequence[Any] | None = None):
        import open3d as o3d

        self.mesh = mesh
        self.extras = as_extras(extra)
        self.scene = o3d.t.geometry.RaycastingScene()
        cpu = o3d.core.Device("CPU:0")
        elem_lut, extra_lut, offsets = [], [], {}
        offset = 0
        parts = 0
        self.extra_ids: tuple[str, ...] = ()
        geometries = []
        if len(mesh.faces):
            geometries.append((np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int32),
                               np.asarray(mesh.face_element, np.int32), np.full(len(mesh.faces), -1, np.int32)))
        for e in self.extras:
            geometries.append((e.vertices, e.faces, np.full(len(e.faces), -1, np.int32), e.face_part + parts))
            parts += len(e.ids)
            self.extra_ids += e.ids
        for verts, faces, elem, ext in geometries:
            if not len(faces):
                continue
            gid = self.scene.add_triangles(o3d.core.Tensor(np.ascontiguousarray(verts), o3d.core.float32, cpu),
                                           o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32),
                                                           o3d.core.uint32, cpu))
            offsets[int(gid)] = offset
            elem_lut.append(elem)
            extra_lut.append(ext)
            offset += len(faces)
        n_geom = max(offsets) + 1 if offsets else 0
        self._face_offset = np.zeros(n_geom + 1, dtype=np.int64)
        for g, off in offsets.items():
            self._face_offset[g] = off
        self._face_offset[n_geom] = offset        # misses (geometry INVALID_ID, clipped) land past the end
        # one sentinel face at the end: misses map to it (element -1, extra -1)
        self._elem_lut = np.concatenate(elem_lut + [np.array([-1], np.int32)])
        self._extra_lut = np.concatenate(extra_lut + [np.array([-1], np.int32)])
        self._miss_face = offset
        self.extra_colors = (np.concatenate([e.colors for e in self.extras]) if self.extras
                             else np.zeros((0, 3), np.uint8))

    @property
    def element_count(self) -> int:
        return int(len(self.mesh.global_ids))

    def cast(self, origin, directions, *, normals: bool = True, chunk: int = RAY_CHUNK, shape=None) -> Hits:
        """First hits of rays from one ``origin`` (3,) along ``directions`` (..., 3) (need not be unit).

        ``range_m`` is in units of each direction's length: pass unit directions for metres.
        ``directions`` may also be a function ``fill(start, stop, out)`` writing the directions of
        flat rays ``start:stop`` into ``out`` ((stop - start, 3) float32), with ``shape`` giving the
        batch shape: the rays are then made chunk by chunk and never held all at once.
        """
        import open3d as o3d

        if callable(directions):
            if shape is None:
                raise ValueError("shape is needed when directions is a function")
            shape = tuple(shape)
            fill = directions
        else:
            flat_dirs = np.asarray(directions, dtype=np.float32)
            shape = flat_dirs.shape[:-1]
            flat_dirs = flat_dirs.reshape(-1, 3)

            def fill(start, stop, out):
                out[:] = flat_dirs[start:stop]
        n = int(np.prod(shape)) if shape else 1
        rng = np.empty(n, np.float32)
        elem = np.empty(n, np.int32)
        extra = np.full(n, -1, np.int32)
        nrm = np.empty((n, 3), np.float32) if normals else None
        rays = np.empty((min(chunk, max(n, 1)), 6), np.float32)
        rays[:, :3] = np.asarray(origin, dtype=np.float32).reshape(1, 3)
        n_geom = len(self._face_offset) - 1
        single = n_geom == 1 and not self.extras     # the common case: the model alone
        for start in range(0, n, chunk):
            stop = min(n, start + chunk)
            block = rays[: stop - start]
            fill(start, stop, block[:, 3:])
            out = self.scene.cast_rays(o3d.core.Tensor.from_numpy(block))
            prim = out["primitive_ids"].numpy()
            rng[start:stop] = out["t_hit"].numpy()
            # misses carry INVALID_ID (2^32 - 1): clipped onto the sentinel face at the end of the tables
            if single:
                elem[start:stop] = np.take(self._elem_lut, prim, mode="clip")
            else:
                geom = np.minimum(out["geometry_ids"].numpy(), n_geom)
                face = np.minimum(self._face_offset[geom] + prim, self._miss_face)
                elem[start:stop] = self._elem_lut[face]
                if self.extras:
                    extra[start:stop] = self._extra_lut[face]
            if nrm is not None:       # made exactly when normals are asked for
                nrm[start:stop] = out["primitive_normals"].numpy()
        return Hits(rng.reshape(shape), elem.reshape(shape), extra.reshape(shape),
                    None if nrm is None else nrm.reshape(shape + (3,)))


@dataclass(frozen=True)
class RenderResult:
    """A rendered image with what every pixel sees.

    image : (h, w, 3) uint8 RGB
    element_index : (h, w) int32, index into ``global_ids``/``model_ids``; -1 where no model element
    extra_index : (h, w) int32, index into ``extra_ids``; -1 where no extra
    depth_m : (h, w) float32 range along the ray to the first model or extra surface; inf where none
    """

    image: np.ndarray
    element_index: np.ndarray
    extra_index: np.ndarray
    depth_m: np.ndarray
    global_ids: np.ndarray
    model_ids: np.ndarray
    extra_ids: tuple[str, ...] = field(default_factory=tuple)

    def extra_mask(self, extra_id: str) -> np.ndarray:
        """(h, w) bool: pixels showing the extra part named ``extra_id``."""
        if extra_id not in self.extra_ids:
            return np.zeros(self.extra_index.shape, bool)
        return self.extra_index == self.extra_ids.index(extra_id)


def element_colors_array(mesh: Any, element_colors=None) -> np.ndarray:
    """(k, 3) float64 albedo in [0, 1] per model element.

    ``element_colors`` is None (muted concrete, masonry and steel tones picked per element), a
    (k, 3) array of 0-255 values, or a dict GlobalId -> (r, g, b) (others keep the default).
    """
    k = len(mesh.global_ids)
    palette = np.array([[168, 166, 160], [150, 147, 140], [178, 170, 158], [140, 128, 118],
                        [160, 162, 168], [186, 180, 168]], dtype=np.float64)
    base = palette[_stable_hash(mesh.global_ids) % len(palette)]
    if element_colors is None:
        colors = base
    elif isinstance(element_colors, dict):
        colors = base.copy()
        index = {g: i for i, g in enumerate(np.asarray(mesh.global_ids).tolist())}
        for gid, rgb in element_colors.items():
            if gid in index:
                colors[index[gid]] = rgb
    else:
        colors = np.asarray(element_colors, dtype=np.float64)
        if colors.shape != (k, 3):
            raise ValueError(f"element_colors must be ({k}, 3), one colour per element; got {colors.shape}")
    return np.clip(colors, 0, 255) / 255.0


def _stable_hash(strings) -> np.ndarray:
    return np.array([int.from_bytes(hashlib.blake2b(str(s).encode(), digest_size=4).digest(), "little")
                     for s in np.asarray(strings).tolist()], dtype=np.int64)


def render_equirect(mesh: Any, T_model_from_camera, width: int, height: int, *, element_colors=None,
                    seed: int = 0, extra: Sequence[Any] | None = None,
                    settings: RenderSettings = DEFAULT_SETTINGS, scene: RayScene | None = None) -> RenderResult:
    """Render an equirectangular panorama (height x width, width = 2 height) of the model from a pose.

    mesh : ModelMesh (or any object with vertices, faces, face_element, global_ids, model_ids)
    T_model_from_camera : (4, 4) camera pose, local frame
    extra : extra meshes (``Extra``, trimesh, ModelMesh-like) drawn with their own ids and colours
    seed : sensor-noise seed; one seed gives one image, bit for bit
    scene : a prebuilt :class:`RayScene` of ``mesh`` and ``extra`` to reuse across renders
    """
    width, height = _check_size(width, height, equirect=True)
    bearings = pixel_bearings(width, height)
    return _render(mesh, T_model_from_camera, bearings, element_colors, seed, extra, settings, scene)


def render_perspective(mesh: Any, camera: PerspectiveCamera, T_model_from_camera, *, element_colors=None,
                       seed: int = 0, extra: Sequence[Any] | None = None,
                       settings: RenderSettings = DEFAULT_SETTINGS, scene: RayScene | None = None) -> RenderResult:
    """Render a perspective photo through ``camera`` (oriented by its yaw/pitch/roll in the camera frame).

    For a fixed site camera, give its pose as ``T_model_from_camera`` and leave the camera's
    yaw/pitch/roll at 0; for a view cut from a panorama, give the panorama's pose.
    """
    if not isinstance(camera, PerspectiveCamera):
        raise TypeError(f"camera must be a PerspectiveCamera, got {type(camera).__name__}")
    return _render(mesh, T_model_from_camera, camera.pixel_bearings(), element_colors, seed, extra, settings,
                   scene)


def _check_size(width: int, height: int, *, equirect: bool) -> tuple[int, int]:
    width, height = int(width), int(height)
    if width < 2 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if equirect and width != 2 * height:
        raise ValueError(f"an equirectangular image must be 2:1, got {width}x{height}")
    return width, height


def _render(mesh, T, bearings, element_colors, seed, extra, settings, scene) -> RenderResult:
    T = check_transform(T)
    if scene is None:
        scene = RayScene(mesh, extra)
    elif extra:
        raise ValueError("pass extra meshes when building the RayScene, not alongside a prebuilt scene")
    R = T[:3, :3].astype(np.float32)
    origin = T[:3, 3]
    dirs = bearings @ R.T
    hits = scene.cast(origin, dirs)
    albedo_model = element_colors_array(mesh, element_colors)
    image = _shade(scene, hits, origin, dirs, albedo_model, settings, seed)
    depth = hits.range_m.astype(np.float32)
    return RenderResult(image, hits.element, hits.extra, depth, np.asarray(mesh.global_ids),
                        np.asarray(mesh.model_ids), scene.extra_ids)


def _shade(scene: RayScene, hits: Hits, origin, dirs, albedo_model, s: RenderSettings, seed: int) -> np.ndarray:
    shape = hits.range_m.shape
    d = dirs.reshape(-1, 3).astype(np.float32, copy=False)
    t = hits.range_m.reshape(-1)
    elem = hits.element.reshape(-1)
    ext = hits.extra.reshape(-1)
    assert hits.normal is not None      # render casts with normals
    nn = hits.normal.reshape(-1, 3)
    sun = np.asarray(s.sun_direction, np.float32)
    sun /= np.linalg.norm(sun)
    o = np.asarray(origin, np.float32)

    hit = np.isfinite(t)
    k = len(albedo_model)
    # one albedo table: model elements, then extra parts, then a sentinel for misses
    table = np.concatenate([albedo_model, scene.extra_colors / 255.0, np.zeros((1, 3))]).astype(np.float32)
    which = np.where(ext >= 0, k + ext, np.where(elem >= 0, elem, len(table) - 1))
    p = o + d * np.where(hit, t, 0.0).astype(np.float32)[:, None]
    facing = np.einsum("ij,ij->i", nn, d)
    sign = np.where(facing > 0, -1.0, 1.0).astype(np.float32)
    lambert = np.clip((nn @ sun) * sign, 0.0, None)
    light = s.ambient + s.sun * lambert + s.headlight * np.abs(facing)
    # triplanar texture: project on the plane most facing the surface, offset per element/part
    axis = np.argmax(np.abs(nn), axis=1)
    a = np.where(axis == 0, p[:, 1], p[:, 0])
    b = np.where(axis == 2, p[:, 1], p[:, 2])
    tex = _sample_texture(a, b, which, s.texture_scale_m)
    radiance = table[which] * ((1.0 + s.texture_amplitude * tex) * light)[:, None]
    if s.haze_m > 0:
        veil = (1.0 - np.exp(-np.where(hit, t, 0.0) / s.haze_m)).astype(np.float32)[:, None]
        radiance = radiance * (1 - veil) + _SKY_HORIZON.astype(np.float32) * veil

    back = np.flatnonzero(~hit)
    if len(back):
        radiance[back] = _background(scene, o, d[back], s, sun)

    q = (np.clip(radiance, 0.0, 1.0) * (_LUT_SIZE - 1)).astype(np.int32)
    display, sigma = _display_lut(s.gamma, s.read_noise_dn, s.shot_noise)
    out = display[q]
    out += np.random.default_rng(seed).standard_normal(out.shape, dtype=np.float32) * sigma[q]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(shape + (3,))


def _background(scene: RayScene, o: np.ndarray, db: np.ndarray, s: RenderSettings, sun: np.ndarray) -> np.ndarray:
    """Sky above the horizon, a textured ground plane below it (what no model surface covers)."""
    norm = np.linalg.norm(db, axis=1)
    sin_el = np.clip(db[:, 2] / norm, -1.0, 1.0)
    up = np.sqrt(np.clip(sin_el, 0.0, None))[:, None]
    sky = (_SKY_HORIZON + (_SKY_ZENITH - _SKY_HORIZON) * up).astype(np.float32)
    # clouds on a plane overhead, so that they shrink towards the horizon as real ones do
    lift = np.maximum(sin_el, 0.04)
    clouds = _sample_texture(db[:, 0] / norm / lift * 3.0, db[:, 1] / norm / lift * 3.0,
                             np.zeros(len(db), np.int64), 4.0)
    sky += (0.10 * np.clip(clouds, 0.0, None) * np.clip(sin_el * 4.0, 0.0, 1.0))[:, None]
    if s.ground:
        verts = np.asarray(scene.mesh.vertices)
        gz = s.ground_z_m if s.ground_z_m is not None else (float(verts[:, 2].min()) if len(verts) else 0.0)
        down = db[:, 2] < -1e-6
        tg = np.where(down, (gz - o[2]) / np.where(down, db[:, 2], -1.0), -1.0)
        on = np.flatnonzero(tg > 0)
        if len(on):
            pg = o + db[on] * tg[on, None].astype(np.float32)
            g = _sample_texture(pg[:, 0], pg[:, 1], np.full(len(on), 7), 0.05)
            color = _GROUND * (1.0 + 0.35 * g)[:, None] * (s.ambient + s.sun * sun[2])
            veil = (1.0 - np.exp(-tg[on] / max(s.haze_m, 1e-6)))[:, None]
            sky[on] = color * (1 - veil) + _SKY_HORIZON * veil
    return sky


_LUT_SIZE = 4096
_TEXTURE_SIZE = 512


@functools.lru_cache(maxsize=4)
def _display_lut(gamma: float, read_noise: float, shot_noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Display value (8-bit DN, float32) and sensor noise sigma for each quantised linear radiance."""
    display = (np.power(np.linspace(0.0, 1.0, _LUT_SIZE), 1.0 / gamma) * 255.0).astype(np.float32)
    sigma = np.sqrt(read_noise ** 2 + shot_noise * display).astype(np.float32)
    return display, sigma


@functools.lru_cache(maxsize=1)
def _texture_image() -> np.ndarray:
    """A periodic 512x512 fractal noise tile in about [-1, 1] (1/f spectrum: grain to blotches)."""
    rng = np.random.default_rng(20240611)
    white = rng.standard_normal((_TEXTURE_SIZE, _TEXTURE_SIZE))
    f = np.fft.fftfreq(_TEXTURE_SIZE)
    radius = np.hypot(f[:, None], f[None, :])
    radius[0, 0] = 1.0
    spectrum = np.fft.fft2(white) / radius ** 0.9
    spectrum[0, 0] = 0.0
    tile = np.real(np.fft.ifft2(spectrum))
    return (tile / (3.0 * tile.std())).astype(np.float32)


def _sample_texture(a: np.ndarray, b: np.ndarray, key: np.ndarray, feature_m: float) -> np.ndarray:
    """Bilinear samples of the noise tile at plane coordinates (a, b) (metres), one offset per key."""
    import cv2

    key = np.asarray(key, np.int64)
    # a fixed, different offset per key decorrelates neighbouring elements' textures
    ku = ((key * 0.6180339887) % 1.0 * _TEXTURE_SIZE).astype(np.float32)
    kv = ((key * 0.7548776662) % 1.0 * _TEXTURE_SIZE).astype(np.float32)
    scale = np.float32(4.0 / feature_m)   # four texels per feature
    n = len(key)
    # cv2.remap takes maps of at most 32767 x 32767: lay the samples out in rows of 4096
    cols = 4096
    rows = -(-n // cols)
    mu = np.zeros(rows * cols, np.float32)
    mv = np.zeros(rows * cols, np.float32)
    mu[:n] = np.mod(a.astype(np.float32) * scale + ku, _TEXTURE_SIZE)
    mv[:n] = np.mod(b.astype(np.float32) * scale + kv, _TEXTURE_SIZE)
    out = cv2.remap(_texture_image(), mu.reshape(rows, cols), mv.reshape(rows, cols), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_WRAP)
    return out.reshape(-1)[:n]
