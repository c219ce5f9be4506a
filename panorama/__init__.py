"""360° panoramas: equirectangular images, their pose in the model, pixel <-> ray <-> element, measurement, views.

Modules (heavy libraries are imported inside functions, so importing this package is cheap):

- ``camera``: conventions (equirectangular pixels <-> bearings, ``T_model_from_camera``),
  ``PerspectiveCamera`` with exact mappings to the panorama, perspective views and cube faces
- ``render``: ray-cast renderers (shaded, textured, noisy) with per-pixel element ids; extras
- ``io``: JPEG/PNG panoramas with GPano XMP and EXIF time, E57 ``images2D`` spherical images
- ``pose``: given poses, control points (P3P + RANSAC + Levenberg-Marquardt), survey stations
- ``refine``: pose refinement from the photo's edges (rotation and centre with control points, else rotation)
- ``element_map``: per-pixel element and range, compact storage
- ``overlay``: the design drawn over photos; model-vs-photo edge differences
- ``measure``: distances, heights and clearances by model depth, scan depth or the floor plane
- ``pano_store``: the ``panoramas`` tables (migration 0003) and element maps beside the store
- ``cli``: ``sitetwin pano add | list | element-map | measure | view``; ``demo``: the demo stage
"""
