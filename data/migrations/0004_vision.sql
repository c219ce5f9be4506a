-- owner: sitetwin.vision
-- Vision (vision/): detector runs, fixed site cameras, detections tagged onto model elements,
-- hazards and the construction stage observed on elements. Coordinates are metres in the
-- site's local frame (as ModelMesh uses it); boxes are pixels of the source image (for a
-- panorama: equirectangular pixels, where x2 may exceed the width for a box across the seam).
-- Evidence crops and run artefacts are files beside the store (<db>.cache/vision/...).

CREATE TABLE vision_runs (
    run_id          VARCHAR PRIMARY KEY,    -- 'R' + 11 hex digits
    kind            VARCHAR NOT NULL,       -- train | eval | export | detect
    site_code       VARCHAR,                -- the site whose images it ran on; NULL for research datasets
    parent_run_id   VARCHAR,                -- eval/export/detect: the train run that made the weights, if known
    model_cfg       VARCHAR,                -- model yaml (yolo11n.yaml) or the weights it started from
    weights_path    VARCHAR,                -- weights produced (train, export) or used (eval, detect)
    weights_sha256  VARCHAR,
    class_names     JSON,                   -- ["person", "hard_hat", ...], index = class id
    dataset_path    VARCHAR,
    dataset_hash    VARCHAR,                -- sha256 over every image and label file (see vision.datasets)
    config          JSON,                   -- the ultralytics arguments used
    metrics         JSON,                   -- precision, recall, mAP50, mAP50-95, timings ...
    per_class       JSON,                   -- [{class, images, instances, precision, recall, map50, map50_95}]
    artifacts       JSON,                   -- {"confusion_matrix": path, "pr_curve": path, "onnx": path, ...}
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP,
    seconds         DOUBLE,
    status          VARCHAR NOT NULL        -- done | failed
);

CREATE TABLE cameras (
    site_code           VARCHAR NOT NULL,
    camera_id           VARCHAR NOT NULL,
    name                VARCHAR,
    source_url          VARCHAR,            -- rtsp:// or http:// stream, or NULL
    width               INTEGER NOT NULL,   -- pixels
    height              INTEGER NOT NULL,
    fx                  DOUBLE NOT NULL,    -- pinhole intrinsics, pixels (pixel centres at i + 0.5)
    fy                  DOUBLE NOT NULL,
    cx                  DOUBLE NOT NULL,
    cy                  DOUBLE NOT NULL,
    -- 4x4, the camera's panorama-convention frame (x forward, y left, z up) -> site local frame
    T_model_from_camera JSON NOT NULL,
    model_id            VARCHAR,            -- model the pose was set against, if any
    added_at            TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (site_code, camera_id)
);

CREATE TABLE detections (
    detection_id  VARCHAR PRIMARY KEY,      -- 'D' + 15 hex digits
    site_code     VARCHAR NOT NULL,
    source_kind   VARCHAR NOT NULL,         -- image | video | stream | panorama | camera
    source_ref    VARCHAR NOT NULL,         -- file path, stream URL, or pano id
    frame_index   INTEGER,                  -- video/stream frame, NULL for still images
    captured_at   TIMESTAMP,
    class_name    VARCHAR NOT NULL,
    confidence    DOUBLE NOT NULL,
    x1 DOUBLE NOT NULL, y1 DOUBLE NOT NULL, x2 DOUBLE NOT NULL, y2 DOUBLE NOT NULL,
    pano_id       VARCHAR,
    camera_id     VARCHAR,
    track_id      INTEGER,
    model_id      VARCHAR,                  -- element the box stands on / in front of
    global_id     VARCHAR,
    ifc_class     VARCHAR,
    storey        VARCHAR,
    x_m DOUBLE, y_m DOUBLE, z_m DOUBLE,     -- 3D position of the box's foot point, local frame
    distance_m    DOUBLE,                   -- range from the camera to that point
    run_id        VARCHAR,
    attributes    JSON                      -- e.g. {"head": "hard_hat", "vest": false} after pairing
);
CREATE INDEX detections_site_idx ON detections (site_code, captured_at);
CREATE INDEX detections_element_idx ON detections (model_id, global_id);

CREATE TABLE hazards (
    hazard_id     VARCHAR PRIMARY KEY,      -- 'H' + 15 hex digits
    site_code     VARCHAR NOT NULL,
    rule          VARCHAR NOT NULL,         -- no_hard_hat | no_vest | unprotected_edge | machinery_zone
    severity      VARCHAR NOT NULL,         -- low | medium | high | critical
    message       VARCHAR NOT NULL,
    started_at    TIMESTAMP,
    ended_at      TIMESTAMP,
    duration_s    DOUBLE,                   -- how long the condition held (0 for a still image)
    source_kind   VARCHAR,
    source_ref    VARCHAR,
    pano_id       VARCHAR,
    camera_id     VARCHAR,
    track_id      INTEGER,
    storey        VARCHAR,
    model_id      VARCHAR,                  -- element concerned: the unguarded edge, or where the person stands
    global_id     VARCHAR,
    x_m DOUBLE, y_m DOUBLE, z_m DOUBLE,
    distance_m    DOUBLE,                   -- to the edge, or into the zone
    detection_ids JSON,
    evidence      JSON,                     -- crop image paths, relative to the store's cache dir
    run_id        VARCHAR,
    finding_id    VARCHAR                   -- the finding raised for it (oversight), if any
);
CREATE INDEX hazards_site_idx ON hazards (site_code, started_at);

-- What detectors saw being built: one row per sighting of a construction stage on an element.
CREATE TABLE stage_observations (
    site_code     VARCHAR NOT NULL,
    model_id      VARCHAR NOT NULL,
    global_id     VARCHAR NOT NULL,
    stage         VARCHAR NOT NULL,         -- formwork | rebar | concrete
    stage_rank    INTEGER NOT NULL,         -- 1 formwork, 2 rebar, 3 concrete (later stages rank higher)
    observed_at   TIMESTAMP,
    confidence    DOUBLE NOT NULL,
    detection_id  VARCHAR NOT NULL,
    run_id        VARCHAR
);
CREATE INDEX stage_observations_element_idx ON stage_observations (model_id, global_id);

-- The most advanced stage seen on each element, next to the scan-based status (twin).
CREATE VIEW observed_stages AS
SELECT site_code, model_id, global_id,
       arg_max(stage, stage_rank) AS stage,
       max(stage_rank) AS stage_rank,
       min(observed_at) AS first_seen_at,
       max(observed_at) AS last_seen_at,
       count(*) AS sightings,
       max(confidence) AS max_confidence
FROM stage_observations
GROUP BY site_code, model_id, global_id;
