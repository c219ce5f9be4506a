"""YOLO detectors for progress and hazards (ultralytics): datasets, training, inference, tagging, hazard rules."""
