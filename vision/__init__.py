"""YOLO detectors for progress and hazards (ultralytics): datasets, training, inference, tagging, hazard rules.

Importing ``vision`` is cheap; torch and ultralytics load only in the modules that train
or detect, after :func:`vision.runtime.prepare` has made them run offline on CPU torch.
"""

from sitetwin.vision.errors import DatasetError, SourceError, StreamDropped, VisionError, WeightsError

__all__ = ["DatasetError", "SourceError", "StreamDropped", "VisionError", "WeightsError"]
