"""Synthetic data: the demo site and everything the tests and benchmarks generate.

One place for what is made up rather than measured, so that no library package carries a
generator. The demo (``sitetwin demo``), the tests and the benchmarks all take it from here:

- ``building``: the demo building, an IFC4 concrete frame with its 4D schedule
- ``scans``: terrestrial scans simulated from a model (stations, noise, clutter, occlusion)
- ``workers``: rendered worker scenes for training and testing detectors
- ``sensor_feeds``: a week of site sensor data (dust, noise, cranes, hoists, gates)
- ``bigsite``: a store of many sites at city scale, for the workbench's tests and benchmark
- ``demo``: the demo site's stages, run in order by ``sitetwin.app.demo``
"""
