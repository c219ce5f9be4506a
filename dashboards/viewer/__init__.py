"""The WebGL viewer's server side: a site's models as binary buffers, per-element colours, scan points.

- :mod:`.geometry`: every element of the site's current models with its full tessellation, as one
  binary file (``STVG``: a JSON header, then little-endian typed arrays), built once per set of
  model ids and kept beside the store (``<db>.cache/viewer/``) and in memory;
- :mod:`.colours`: each element's colour, ghost flag and the legend for a colour mode, by the
  same rules as the plotly twin (``dashboards.twin_view.mode_values`` / ``element_bins``);
- :mod:`.routes`: ``/viewer/<site>/geometry.bin``, ``colours.json`` and ``points.bin``, served
  only for sites in the caller's scope (``dashboards.access.site_route``).

The wire format is written down in :mod:`.geometry`'s docstring; the browser side reads it.
"""
