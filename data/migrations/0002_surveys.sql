-- owner: sitetwin.twin
-- Surveys (twin/): point-cloud surveys registered to the design model, per-element deviation,
-- unplanned objects. Coordinates are metres in the site's local frame (as ModelMesh uses it).
-- Per-point data (distances, element of each point) lives in Parquet beside the store:
-- <db>.cache/surveys/<survey_id>/points.parquet (surveys.points_file, relative to the cache).

CREATE TABLE surveys (
    survey_id            VARCHAR PRIMARY KEY,   -- 'S' + 11 hex digits of sha256(site, scan files, epoch)
    site_code            VARCHAR NOT NULL,
    name                 VARCHAR,
    model_ids            JSON NOT NULL,         -- models it was registered to and compared with
    epoch                DATE,                  -- survey date; NULL when not given
    registration_method  VARCHAR NOT NULL,      -- transform | control_points | auto | none
    T_model_from_survey  JSON NOT NULL,         -- 4x4, survey (file) frame -> site local frame
    fitness              DOUBLE,                -- share of scan points within inlier_distance_m of the model
    rmse_m               DOUBLE,                -- RMS point-to-model distance of those inliers
    inlier_distance_m    DOUBLE,
    registration         JSON,                  -- details: control-point residuals, candidates, timings
    point_count          BIGINT NOT NULL,
    noise_mm             DOUBLE,                -- robust sigma of distances on the model's surfaces
    loa                  VARCHAR,               -- USIBD Level of Accuracy the survey supports (LOA10..LOA50)
    tolerances           JSON,                  -- per IFC class, as applied
    points_file          VARCHAR,               -- Parquet with one row per point, relative to the cache dir
    status               VARCHAR NOT NULL,      -- registered | analysed
    created_at           TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE INDEX surveys_site_idx ON surveys (site_code);

CREATE TABLE scans (
    survey_id          VARCHAR NOT NULL,
    site_code          VARCHAR NOT NULL,
    scan_index         INTEGER NOT NULL,        -- 0.. in the order read
    name               VARCHAR,
    file               VARCHAR NOT NULL,        -- path the scan was read from
    file_sha256        VARCHAR NOT NULL,
    format             VARCHAR NOT NULL,        -- e57 | las | laz | copc | ply | pcd | xyz ...
    point_count        BIGINT NOT NULL,
    has_color          BOOLEAN NOT NULL,
    has_intensity      BOOLEAN NOT NULL,
    station_known      BOOLEAN NOT NULL,        -- the scan frame's origin is the scanner (E57 pose)
    T_model_from_scan  JSON NOT NULL,           -- 4x4, scan frame -> site local frame, after registration
    PRIMARY KEY (survey_id, scan_index)
);

CREATE TABLE element_deviation (
    site_code        VARCHAR NOT NULL,
    survey_id        VARCHAR NOT NULL,
    model_id         VARCHAR NOT NULL,
    global_id        VARCHAR NOT NULL,
    ifc_class        VARCHAR,
    storey           VARCHAR,
    planned          BOOLEAN,                   -- the schedule says it exists by the survey epoch
    points           BIGINT NOT NULL,           -- scan points attributed to it (within the inlier band)
    coverage         DOUBLE,                    -- observed share of its surface the survey could see
    visible_share    DOUBLE,                    -- share of its surface the survey could see at all
    mean_mm          DOUBLE,                    -- signed distances: + outside the element's solid
    median_mm        DOUBLE,
    p95_mm           DOUBLE,                    -- 95th percentile of |distance|
    max_mm           DOUBLE,                    -- the signed distance of largest magnitude
    shift_x_mm       DOUBLE,                    -- least-squares translation explaining the distances
    shift_y_mm       DOUBLE,
    shift_z_mm       DOUBLE,
    shift_mm         DOUBLE,                    -- its length: the element's position deviation
    section_mm       DOUBLE,                    -- section-size deviation (opposite faces), + larger
    verticality_mm   DOUBLE,                    -- horizontal drift from bottom to top (walls, columns)
    flatness_mm      DOUBLE,                    -- noise-corrected p95 of residuals after the shift
    checks           JSON,                      -- the GB 50204 checks that failed, with limits
    status           VARCHAR NOT NULL,          -- built | partial | not_built | out_of_tolerance
    PRIMARY KEY (survey_id, model_id, global_id)
);
CREATE INDEX element_deviation_site_idx ON element_deviation (site_code, global_id);

CREATE TABLE element_histograms (
    site_code   VARCHAR NOT NULL,
    survey_id   VARCHAR NOT NULL,
    model_id    VARCHAR NOT NULL,
    global_id   VARCHAR NOT NULL,
    bin_lo_mm   DOUBLE NOT NULL,                -- signed distance bin [lo, hi); the end bins are open
    bin_hi_mm   DOUBLE NOT NULL,
    points      BIGINT NOT NULL,
    PRIMARY KEY (survey_id, model_id, global_id, bin_lo_mm)
);

CREATE TABLE unplanned_objects (
    site_code      VARCHAR NOT NULL,
    survey_id      VARCHAR NOT NULL,
    object_id      INTEGER NOT NULL,            -- per survey, largest first; points.parquet 'cluster'
    points         BIGINT NOT NULL,
    centroid_x_m   DOUBLE, centroid_y_m DOUBLE, centroid_z_m DOUBLE,
    min_x_m DOUBLE, min_y_m DOUBLE, min_z_m DOUBLE,
    max_x_m DOUBLE, max_y_m DOUBLE, max_z_m DOUBLE,
    storey         VARCHAR,                     -- the storey whose elevation is next below its base
    nearest_model_id  VARCHAR,
    nearest_global_id VARCHAR,                  -- the element nearest to its centroid
    distance_m     DOUBLE,                      -- from its nearest point to the model
    PRIMARY KEY (survey_id, object_id)
);

-- When each element was first seen standing (built or out of tolerance), across epochs.
CREATE VIEW element_first_built AS
SELECT d.site_code, d.model_id, d.global_id,
       min(s.epoch) AS first_built_epoch,
       arg_min(s.survey_id, s.epoch) AS first_built_survey
FROM element_deviation d JOIN surveys s USING (survey_id)
WHERE d.status IN ('built', 'out_of_tolerance') AND s.epoch IS NOT NULL
GROUP BY d.site_code, d.model_id, d.global_id;
