"""360° panoramas: equirectangular images, their pose in the model, pixel <-> ray <-> element, measurement, views."""
