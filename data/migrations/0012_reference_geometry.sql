-- owner: sitetwin.bim
-- Reference geometry of a model: alignment axes (IfcAlignment), kept as polylines rather than
-- surfaces. Scans are not compared to them; the 3D view draws them and civil checks can measure
-- offsets from them.

CREATE TABLE reference_lines (
    site_code   VARCHAR NOT NULL,
    model_id    VARCHAR NOT NULL,
    global_id   VARCHAR NOT NULL,
    ifc_class   VARCHAR NOT NULL,              -- IfcAlignment
    name        VARCHAR,
    kind        VARCHAR NOT NULL,              -- axis (3D) | plan (horizontal layout only)
    note        VARCHAR,                       -- why a 3D axis was kept as its plan
    point_count INTEGER NOT NULL,
    length_m    DOUBLE NOT NULL,               -- along the polyline
    points_m    DOUBLE[] NOT NULL,             -- x0, y0, z0, x1, ... in the site's local frame, metres
    PRIMARY KEY (model_id, global_id)
);
CREATE INDEX reference_lines_site_idx ON reference_lines (site_code);
