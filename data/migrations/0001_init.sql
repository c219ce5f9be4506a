-- owner: sitetwin.bim (the sites table: sitetwin.data)
-- Foundation: sites, design models and their elements, storeys, schedules.
-- Unified identifiers: every record carries site_code; model-derived records also carry
-- model_id and the IFC GlobalId, so rows can travel between project, district and city
-- platforms without renumbering.

CREATE TABLE sites (
    site_code   VARCHAR PRIMARY KEY,
    name        VARCHAR,
    district    VARCHAR,
    city        VARCHAR,
    -- local frame: world (IFC project coordinates, m) = local + origin
    origin_x_m  DOUBLE NOT NULL DEFAULT 0,
    origin_y_m  DOUBLE NOT NULL DEFAULT 0,
    origin_z_m  DOUBLE NOT NULL DEFAULT 0,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE models (
    model_id        VARCHAR PRIMARY KEY,   -- first 12 hex digits of the file's sha256
    site_code       VARCHAR NOT NULL,
    name            VARCHAR NOT NULL,      -- discipline model name; revisions share it
    version         INTEGER NOT NULL,
    file_name       VARCHAR NOT NULL,
    source_path     VARCHAR,               -- where it was loaded from, to rebuild a lost cache
    sha256          VARCHAR NOT NULL,
    ifc_schema      VARCHAR NOT NULL,
    length_unit     VARCHAR NOT NULL,      -- as declared in the file, e.g. MILLIMETRE
    length_unit_m   DOUBLE NOT NULL,       -- metres per file unit
    georef          JSON,                  -- map conversion, CRS and its validity
    element_count   INTEGER NOT NULL,
    triangle_count  INTEGER NOT NULL,
    failures        JSON,                  -- elements whose geometry failed to tessellate
    loaded_at       TIMESTAMP NOT NULL DEFAULT current_timestamp,
    UNIQUE (site_code, name, version)
);

CREATE TABLE storeys (
    site_code     VARCHAR NOT NULL,
    model_id      VARCHAR NOT NULL,
    global_id     VARCHAR NOT NULL,
    name          VARCHAR,
    elevation_m   DOUBLE,               -- in the local frame
    PRIMARY KEY (model_id, global_id)
);

CREATE TABLE elements (
    site_code        VARCHAR NOT NULL,
    model_id         VARCHAR NOT NULL,
    global_id        VARCHAR NOT NULL,
    ifc_class        VARCHAR NOT NULL,
    predefined_type  VARCHAR,
    name             VARCHAR,
    object_type      VARCHAR,
    storey           VARCHAR,
    storey_global_id VARCHAR,
    type_name        VARCHAR,
    type_global_id   VARCHAR,
    material         VARCHAR,
    properties       JSON,                 -- {pset: {name: value}}
    quantities       JSON,                 -- {qto: {name: value}}
    has_geometry     BOOLEAN NOT NULL,
    triangle_count   INTEGER NOT NULL,
    -- bounding box in the site's local frame, metres (NULL when there is no geometry)
    bbox_min_x_m DOUBLE, bbox_min_y_m DOUBLE, bbox_min_z_m DOUBLE,
    bbox_max_x_m DOUBLE, bbox_max_y_m DOUBLE, bbox_max_z_m DOUBLE,
    geometry_hash    VARCHAR,              -- rounded-geometry digest, for revision diffs
    PRIMARY KEY (model_id, global_id)
);
CREATE INDEX elements_site_idx ON elements (site_code);

-- The twin of a site: the newest version of every discipline model.
CREATE VIEW current_models AS
SELECT m.* FROM models m
WHERE m.version = (SELECT max(version) FROM models x WHERE x.site_code = m.site_code AND x.name = m.name);

CREATE VIEW current_elements AS
SELECT e.* FROM elements e JOIN current_models m USING (model_id);

CREATE TABLE schedules (
    schedule_id   VARCHAR PRIMARY KEY,     -- sha256 prefix of the source, or the IfcWorkSchedule GlobalId
    site_code     VARCHAR NOT NULL,
    name          VARCHAR,
    source        VARCHAR NOT NULL,        -- ifc | msproject | csv
    file_name     VARCHAR,
    model_id      VARCHAR,                 -- set when read from an IFC model
    imported_at   TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE tasks (
    site_code     VARCHAR NOT NULL,
    schedule_id   VARCHAR NOT NULL,
    task_id       VARCHAR NOT NULL,        -- IfcTask GlobalId or MS Project UID
    parent_id     VARCHAR,
    wbs           VARCHAR,
    name          VARCHAR,
    outline_level INTEGER,
    is_summary    BOOLEAN NOT NULL DEFAULT false,
    start         TIMESTAMP,
    finish        TIMESTAMP,
    PRIMARY KEY (schedule_id, task_id)
);

CREATE TABLE task_elements (
    site_code     VARCHAR NOT NULL,
    schedule_id   VARCHAR NOT NULL,
    task_id       VARCHAR NOT NULL,
    model_id      VARCHAR,                 -- NULL when the link names a GlobalId not (yet) in any model
    global_id     VARCHAR NOT NULL,
    PRIMARY KEY (schedule_id, task_id, global_id)
);
