-- owner: sitetwin.twin
-- Where a survey came from and how it was placed: the CRS its files declared (or --crs named),
-- the scale of a similarity fit (photogrammetry, --scale) with its uncertainty, and the offset
-- between the pose the georeference gave and the one ICP refined it to.

ALTER TABLE surveys ADD COLUMN crs VARCHAR;                 -- e.g. EPSG:4547; NULL when the files name none
ALTER TABLE surveys ADD COLUMN scale DOUBLE;                -- model metres per survey unit (similarity fits)
ALTER TABLE surveys ADD COLUMN scale_sigma DOUBLE;          -- its relative 1-sigma (block bootstrap)
ALTER TABLE surveys ADD COLUMN georef_offset_m DOUBLE;      -- largest displacement of the cloud's extent
ALTER TABLE surveys ADD COLUMN georef_offset_deg DOUBLE;    -- and rotation, georeference vs refined pose
