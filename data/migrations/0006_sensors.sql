-- owner: sitetwin.sensors
-- Site sensors: the device registry, readings as time series, attendance, warnings.
-- Times are UTC, stored as TIMESTAMP without zone; a site's day and night are reckoned in
-- its timezone (sensor_settings). Positions are metres in the site's local frame, the one
-- bim.load_mesh returns. Every row carries site_code; device rows that sit on a model
-- element carry its model_id and IFC GlobalId.

CREATE TABLE devices (
    device_id        VARCHAR PRIMARY KEY,    -- unified identifier, e.g. DEMO-CRANE-01
    site_code        VARCHAR NOT NULL,
    device_type      VARCHAR NOT NULL,       -- dust | noise | weather | crane | hoist | gate | generic
    name             VARCHAR,
    x_m DOUBLE, y_m DOUBLE, z_m DOUBLE,      -- position, local frame (NULL when only the host element is known)
    model_id         VARCHAR,                -- host element, when mounted on one
    global_id        VARCHAR,
    supplier         VARCHAR,
    device_model     VARCHAR,                -- the supplier's product model
    serial_no        VARCHAR,
    installed_on     DATE,
    removed_on       DATE,
    interval_s       DOUBLE NOT NULL,        -- expected reporting interval; longer silence is a 'gap' warning
    config           JSON,                   -- per type: crane geometry, limit overrides
    blacklisted      BOOLEAN NOT NULL DEFAULT false,  -- readings are stored flagged and not trusted
    blacklist_reason VARCHAR,
    created_at       TIMESTAMP NOT NULL
);

-- Suppliers whose devices are not trusted (fraudulent or tampered monitors); adding a
-- device from a listed supplier flags it at once.
CREATE TABLE supplier_blacklist (
    supplier    VARCHAR PRIMARY KEY,
    reason      VARCHAR NOT NULL,
    listed_at   TIMESTAMP NOT NULL
);

CREATE TABLE device_calibrations (
    site_code      VARCHAR NOT NULL,
    device_id      VARCHAR NOT NULL,
    calibrated_on  DATE NOT NULL,
    valid_until    DATE NOT NULL,
    laboratory     VARCHAR,
    certificate    VARCHAR,
    notes          VARCHAR,
    PRIMARY KEY (device_id, calibrated_on)
);

-- Per-device API tokens for the HTTP endpoint; only a digest is kept.
CREATE TABLE device_tokens (
    token_id       VARCHAR PRIMARY KEY,      -- short public handle, shown in listings
    site_code      VARCHAR NOT NULL,
    device_id      VARCHAR NOT NULL,
    token_sha256   VARCHAR NOT NULL UNIQUE,
    created_at     TIMESTAMP NOT NULL,
    revoked_at     TIMESTAMP
);

-- Site-level sensor settings: timezone and limit overrides (sensors/default_limits.yaml holds the defaults).
CREATE TABLE sensor_settings (
    site_code   VARCHAR PRIMARY KEY,
    timezone    VARCHAR NOT NULL,
    limits      JSON,
    updated_at  TIMESTAMP NOT NULL
);

-- One row per stored batch: the idempotency ledger. A batch key seen again is skipped.
CREATE TABLE ingest_batches (
    batch_key       VARCHAR PRIMARY KEY,     -- device_id '/' batch_id (client id, or sha256 of the content)
    site_code       VARCHAR NOT NULL,
    device_id       VARCHAR NOT NULL,
    source          VARCHAR NOT NULL,        -- http | csv | parquet | demo
    content_sha256  VARCHAR NOT NULL,
    readings        INTEGER NOT NULL,        -- readings stored from it (copies of stored ones are not counted)
    events          INTEGER NOT NULL,        -- attendance events stored from it
    received_at     TIMESTAMP NOT NULL,      -- when it was acknowledged (HTTP) or read (files)
    stored_at       TIMESTAMP NOT NULL
);

-- Readings: one value of one channel of one device at one time. A reading is identified by
-- (device_id, channel, measured_at); a second copy is ignored, the first stored wins.
CREATE TABLE readings (
    site_code    VARCHAR NOT NULL,
    device_id    VARCHAR NOT NULL,
    channel      VARCHAR NOT NULL,          -- quantity with its unit: pm10_ugm3, load_pct, wind_ms, ...
    measured_at  TIMESTAMP NOT NULL,        -- UTC
    value        DOUBLE NOT NULL,
    trusted      BOOLEAN NOT NULL,          -- false for blacklisted devices
    flags        VARCHAR,                   -- comma-separated: blacklisted, uncalibrated
    batch_key    VARCHAR NOT NULL
);

-- Latest trusted reading per device, kept in step with readings, so that silence is cheap to find.
CREATE TABLE device_status (
    device_id         VARCHAR PRIMARY KEY,
    site_code         VARCHAR NOT NULL,
    last_measured_at  TIMESTAMP,
    last_received_at  TIMESTAMP
);

-- Real-name attendance, pseudonymised: worker_id is a pseudonym, never a national id.
CREATE TABLE attendance_events (
    site_code   VARCHAR NOT NULL,
    device_id   VARCHAR NOT NULL,           -- the gate reader
    worker_id   VARCHAR NOT NULL,
    trade       VARCHAR,
    employer    VARCHAR,
    trained     BOOLEAN NOT NULL,           -- safety education completed and valid
    event       VARCHAR NOT NULL CHECK (event IN ('in', 'out')),
    "at"        TIMESTAMP NOT NULL,         -- UTC
    batch_key   VARCHAR NOT NULL
);

-- Warnings: an episode during which a rule was broken (or a device was silent). Open while
-- ended_at is NULL. They feed the site risk score and can be raised as findings.
CREATE TABLE sensor_warnings (
    warning_id   VARCHAR PRIMARY KEY,
    site_code    VARCHAR NOT NULL,
    device_id    VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,          -- rule name: overload, wind, pm10_15min, noise_night, gap, untrained_worker, ...
    channel      VARCHAR,                   -- the channel the rule reads (NULL for gaps and attendance)
    worker_id    VARCHAR,                   -- for attendance warnings
    severity     VARCHAR NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    started_at   TIMESTAMP NOT NULL,
    ended_at     TIMESTAMP,
    peak_value   DOUBLE,
    limit_value  DOUBLE,
    unit         VARCHAR,
    message      VARCHAR NOT NULL,
    finding_id   VARCHAR,
    detected_at  TIMESTAMP NOT NULL,        -- wall clock when first computed
    updated_at   TIMESTAMP NOT NULL
);
