"""Synthetic data: the demo site and everything the tests and benchmarks generate.

One place for what is made up rather than measured, so that no library package carries a
generator, and one entry point: the demo, the tests and the benchmarks import what they
generate from ``sitetwin.synth``.

>>> from sitetwin.synth import DemoBuildingSpec, build_demo_building, simulate_survey
>>> info = build_demo_building("demo.ifc", DemoBuildingSpec(seed=1))          # doctest: +SKIP

- the demo building, an IFC4 concrete frame with its 4D schedule (``building``);
- terrestrial scans simulated from a model: stations, range noise, clutter, occlusion
  (``scans``), and the demo's as-built history with a survey of any day (``demo.surveys``);
- rendered worker scenes with YOLO labels for training and testing detectors (``workers``);
- a week of site sensor data: dust, noise, wind, cranes, hoists, gates (``sensor_feeds``);
- a seeded site with surveys, panoramas, detections, hazards, findings and sensors, for
  the workbench's tests and benchmark (``bigsite``);
- a city of sites over districts, each with its store, building, surveys and camera, and the
  manifest that runs them on a cluster, for the cluster's tests and benchmark (``city``);
- the demo site's stages, run in order by ``sitetwin.app.demo`` (``demo``).
"""

from sitetwin.synth.bigsite import populate_site
from sitetwin.synth.building import DemoBuildingInfo, DemoBuildingSpec, build_demo_building
from sitetwin.synth.city import WUHAN_DISTRICTS, City, CitySite, CitySpec, make_city, tiny_detector
from sitetwin.synth.demo.surveys import draw_as_built, floor_levels, simulate_epoch
from sitetwin.synth.demo.vision import open_floor_epoch
from sitetwin.synth.scans import (
    SimulatedSurvey,
    default_stations,
    random_pose,
    simulate_survey,
    site_clutter,
    step_for_points,
)
from sitetwin.synth.sensor_feeds import demo_week
from sitetwin.synth.workers import (
    SYNTH_CLASSES,
    SceneSampler,
    SynthConfig,
    Worker,
    labels_from_render,
    render_dataset,
    worker_extra,
)

__all__ = ["SYNTH_CLASSES", "WUHAN_DISTRICTS", "City", "CitySite", "CitySpec", "DemoBuildingInfo", "DemoBuildingSpec",
           "SceneSampler", "SimulatedSurvey", "SynthConfig", "Worker", "build_demo_building", "default_stations",
           "demo_week", "draw_as_built", "floor_levels", "labels_from_render", "make_city", "open_floor_epoch",
           "populate_site", "random_pose", "render_dataset", "simulate_epoch", "simulate_survey", "site_clutter",
           "step_for_points", "tiny_detector", "worker_extra"]
