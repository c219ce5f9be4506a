-- owner: sitetwin.panorama
-- Panoramas (panorama/): 360-degree equirectangular images, their pose in the site's local
-- frame, and what each pixel sees. Images stay files (path + sha256); element maps are files
-- beside the store (<db>.cache/panoramas/<pano_id>/), indexed here.

CREATE TABLE panoramas (
    pano_id              VARCHAR PRIMARY KEY,   -- 'P' + 11 hex digits of sha256(site_code, image sha256)
    site_code            VARCHAR NOT NULL,
    model_id             VARCHAR,               -- the model it was posed against; NULL when none
    name                 VARCHAR,
    file                 VARCHAR NOT NULL,      -- the equirectangular image (extracted beside the store for E57)
    source               VARCHAR NOT NULL,      -- where it was read: image path, or 'scan.e57#images2D/<i>'
    sha256               VARCHAR NOT NULL,      -- of the image bytes
    width                INTEGER NOT NULL,      -- pixels; width = 2 * height
    height               INTEGER NOT NULL,
    captured_at          TIMESTAMP,             -- capture time, as the camera recorded it
    time_source          VARCHAR,               -- exif | xmp | e57 | given; NULL when unknown
    T_model_from_camera  JSON,                  -- 4x4, panorama camera frame -> site local frame (m); NULL: not posed
    pose_source          VARCHAR NOT NULL,      -- given | control_points | survey | e57 | none
    pose_points          INTEGER,               -- control points given
    pose_inliers         INTEGER,               -- control points the pose agrees with
    pose_rms_px          DOUBLE,                -- RMS reprojection error of the inliers, pixels
    pose_rms_deg         DOUBLE,                -- the same as an angle, degrees
    pose_max_px          DOUBLE,
    survey_id            VARCHAR,               -- survey pose: the survey and scan it came from
    scan_index           INTEGER,
    pose                 JSON,                  -- details: yaw/pitch/roll, outliers, RANSAC figures, warnings
    metadata             JSON,                  -- GPano XMP fields, EXIF make/model
    added_at             TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE INDEX panoramas_site_idx ON panoramas (site_code);

CREATE TABLE panorama_control_points (
    site_code     VARCHAR NOT NULL,
    pano_id       VARCHAR NOT NULL,
    point_index   INTEGER NOT NULL,
    label         VARCHAR,
    u             DOUBLE NOT NULL,              -- equirectangular pixel (pixel centres at i + 0.5)
    v             DOUBLE NOT NULL,
    x_m           DOUBLE NOT NULL,              -- model point, site local frame
    y_m           DOUBLE NOT NULL,
    z_m           DOUBLE NOT NULL,
    inlier        BOOLEAN NOT NULL,
    residual_px   DOUBLE,
    residual_deg  DOUBLE,
    PRIMARY KEY (pano_id, point_index)
);

-- One element map per panorama: the index image (PNG, uint16: 0 = no element, i = the
-- element with map_index i in panorama_elements) and depth (npz, float16 range in metres).
CREATE TABLE panorama_element_maps (
    pano_id        VARCHAR PRIMARY KEY,
    site_code      VARCHAR NOT NULL,
    model_ids      JSON NOT NULL,               -- the models ray-cast
    width          INTEGER NOT NULL,
    height         INTEGER NOT NULL,
    index_file     VARCHAR NOT NULL,            -- relative to the store's cache folder
    depth_file     VARCHAR NOT NULL,
    T_model_from_camera JSON NOT NULL,          -- the pose it was computed for
    element_count  INTEGER NOT NULL,            -- distinct elements seen
    coverage       DOUBLE NOT NULL,             -- share of pixels that see an element
    seconds        DOUBLE,
    created_at     TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE panorama_elements (
    site_code       VARCHAR NOT NULL,
    pano_id         VARCHAR NOT NULL,
    map_index       INTEGER NOT NULL,           -- value in the index image
    model_id        VARCHAR NOT NULL,
    global_id       VARCHAR NOT NULL,
    pixels          BIGINT NOT NULL,
    solid_angle_sr  DOUBLE NOT NULL,            -- share of the sphere it covers, steradians
    min_depth_m     DOUBLE,
    median_depth_m  DOUBLE,
    center_u        DOUBLE,                     -- a pixel on it, near its visible centre
    center_v        DOUBLE,
    PRIMARY KEY (pano_id, map_index)
);
CREATE INDEX panorama_elements_gid_idx ON panorama_elements (site_code, global_id);
