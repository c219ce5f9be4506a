-- owner: sitetwin.oversight
-- Oversight (regulators): findings and their append-only history, BCF viewpoints, site
-- profiles, risk scores and tier decisions, evaluations, exchange packages, accounts,
-- sessions, API tokens, login attempts and the audit log.
-- Every record carries site_code; records about model elements carry model_id and the
-- IFC GlobalId. Locations are metres in the site's local frame (world = local + origin).

-- A finding's identity and what was known when it was raised. Rows are never updated:
-- everything that changes afterwards (status, due date, escalation) is an event below.
CREATE TABLE findings (
    finding_id   VARCHAR PRIMARY KEY,      -- lowercase UUID; also the BCF Topic Guid
    site_code    VARCHAR NOT NULL,
    number       INTEGER NOT NULL,         -- running number per site, shown as <site>-<number>
    category     VARCHAR NOT NULL,         -- safety | quality | progress | environment
    severity     VARCHAR NOT NULL,         -- low | medium | high | critical
    title        VARCHAR NOT NULL,
    description  VARCHAR,
    raised_by    VARCHAR NOT NULL,
    raised_at    TIMESTAMP NOT NULL,       -- UTC
    model_id     VARCHAR,
    global_id    VARCHAR,
    storey       VARCHAR,
    x_m DOUBLE, y_m DOUBLE, z_m DOUBLE,    -- local frame, metres
    evidence     JSON,                     -- panorama viewpoint, detection crops, deviation figures
    source       VARCHAR,                  -- who raised it: dashboard | hazard | sensor | bcf | cli ...
    source_ref   VARCHAR,                  -- id in that source (hazard_id, warning_id, BCF file)
    labels       JSON,                     -- list of strings (BCF labels)
    bcf          JSON                      -- BCF topic fields kept for a faithful re-export
);
CREATE INDEX findings_site_idx ON findings (site_code);

-- Append-only history. Each event chains to the previous one by hash, so an edit made
-- outside the API (raw SQL) shows up in oversight.findings.verify_history.
CREATE TABLE finding_events (
    event_id          VARCHAR PRIMARY KEY, -- lowercase UUID; exported as the BCF Comment Guid
    finding_id        VARCHAR NOT NULL,
    site_code         VARCHAR NOT NULL,
    seq               INTEGER NOT NULL,    -- 1, 2, ... within a finding
    occurred_at       TIMESTAMP NOT NULL,  -- UTC
    actor             VARCHAR NOT NULL,
    kind              VARCHAR NOT NULL,    -- raised | comment | rectification_submitted | verified_closed | reopened | escalated | due_changed | imported
    status            VARCHAR,             -- the status after this event, where it sets one
    due               DATE,                -- the due date after this event, where it sets one
    escalation_level  INTEGER,             -- the escalation level after this event, where it sets one
    note              VARCHAR,
    evidence          JSON,
    viewpoint_id      VARCHAR,             -- BCF viewpoint a comment refers to
    prev_hash         VARCHAR NOT NULL,
    hash              VARCHAR NOT NULL,
    UNIQUE (finding_id, seq)
);
CREATE INDEX finding_events_site_idx ON finding_events (site_code);

-- The current state of each finding, derived from its events (never stored twice).
CREATE VIEW finding_state AS
SELECT f.*, s.status, s.status_at, s.due, s.escalation_level, s.event_count, s.last_event_at
FROM findings f
JOIN (
    SELECT finding_id,
           arg_max(status, seq) FILTER (WHERE status IS NOT NULL) AS status,
           arg_max(occurred_at, seq) FILTER (WHERE status IS NOT NULL) AS status_at,
           arg_max(due, seq) FILTER (WHERE due IS NOT NULL) AS due,
           coalesce(arg_max(escalation_level, seq) FILTER (WHERE escalation_level IS NOT NULL), 0) AS escalation_level,
           count(*) AS event_count,
           max(occurred_at) AS last_event_at
    FROM finding_events GROUP BY finding_id
) s USING (finding_id);

-- BCF viewpoints of a finding: camera in the site's local frame, selected components by GlobalId.
CREATE TABLE finding_viewpoints (
    viewpoint_id     VARCHAR PRIMARY KEY,  -- lowercase UUID; the BCF Viewpoint Guid
    finding_id       VARCHAR NOT NULL,
    site_code        VARCHAR NOT NULL,
    idx              INTEGER,              -- sort order
    camera           JSON,                 -- {"kind", "position_m", "direction", "up", "fov_deg" | "view_to_world_scale", "aspect_ratio"}
    components       JSON,                 -- {"selection": [...], "visibility": {...}, "coloring": [...]}
    clipping_planes  JSON,                 -- [{"location_m": [..], "direction": [..]}]
    lines            JSON,                 -- [{"start_m": [..], "end_m": [..]}]
    snapshot         VARCHAR,              -- file under the store's cache folder (relative path)
    source           VARCHAR,              -- panorama:<pano_id> | view | bcf
    created_at       TIMESTAMP NOT NULL
);

-- Who builds and owns a site, and where it is (for the portfolio map).
CREATE TABLE site_profiles (
    site_code        VARCHAR PRIMARY KEY,
    project          VARCHAR,              -- the project a site belongs to (city -> district -> project)
    contractor       VARCHAR,
    data_owner       VARCHAR,              -- organisation answerable for the site's data
    planned_start    DATE,
    planned_finish   DATE,
    workers_planned  INTEGER,
    latitude         DOUBLE,
    longitude        DOUBLE,
    updated_at       TIMESTAMP NOT NULL DEFAULT current_timestamp
);

-- One risk score per site and day, with its full breakdown: the trend is this table.
CREATE TABLE risk_scores (
    site_code        VARCHAR NOT NULL,
    as_of            DATE NOT NULL,
    computed_at      TIMESTAMP NOT NULL,
    score            DOUBLE NOT NULL,       -- 0 (no risk seen) .. 100
    computed_tier    VARCHAR NOT NULL,      -- A | B | C from the score
    tier             VARCHAR NOT NULL,      -- effective tier (a regulator's decision overrides)
    breakdown        JSON NOT NULL,
    formula_version  VARCHAR NOT NULL,
    PRIMARY KEY (site_code, as_of)
);

-- Regulators' tier decisions (append-only; the newest valid one applies).
CREATE TABLE tier_decisions (
    decision_id  VARCHAR PRIMARY KEY,
    site_code    VARCHAR NOT NULL,
    tier         VARCHAR NOT NULL,
    reason       VARCHAR NOT NULL,
    decided_by   VARCHAR NOT NULL,
    decided_at   TIMESTAMP NOT NULL,
    valid_until  DATE
);

CREATE TABLE evaluations (
    evaluation_id     VARCHAR PRIMARY KEY,
    site_code         VARCHAR NOT NULL,
    scheme_id         VARCHAR NOT NULL,
    scheme_version    VARCHAR NOT NULL,
    as_of             DATE NOT NULL,
    evaluated_at      TIMESTAMP NOT NULL,
    evaluated_by      VARCHAR NOT NULL,
    basic_points      DOUBLE NOT NULL,
    promotion_points  DOUBLE NOT NULL,
    total_points      DOUBLE NOT NULL,
    grade             VARCHAR NOT NULL,
    items             JSON NOT NULL,
    risk_score        DOUBLE,
    premium_factor    DOUBLE
);

-- Exchange packages made or taken in (project -> district -> city).
CREATE TABLE exchange_packages (
    package_id    VARCHAR PRIMARY KEY,
    site_code     VARCHAR NOT NULL,       -- one row per site in the package
    direction     VARCHAR NOT NULL,       -- export | import
    level         VARCHAR NOT NULL,       -- project | district | city: the platform that made it
    path          VARCHAR,
    actor         VARCHAR NOT NULL,
    done_at       TIMESTAMP NOT NULL,
    manifest      JSON
);

-- Access control. These tables never leave the platform in an exchange package.
CREATE TABLE accounts (
    username       VARCHAR PRIMARY KEY,
    role           VARCHAR NOT NULL,      -- admin | city_regulator | district_regulator | contractor | viewer
    display_name   VARCHAR,
    city           VARCHAR,
    district       VARCHAR,
    password_hash  VARCHAR,               -- argon2id; NULL for machine-only accounts
    created_at     TIMESTAMP NOT NULL,
    disabled_at    TIMESTAMP
);

CREATE TABLE account_sites (
    username   VARCHAR NOT NULL,
    site_code  VARCHAR NOT NULL,
    PRIMARY KEY (username, site_code)
);

CREATE TABLE sessions (
    session_id   VARCHAR PRIMARY KEY,     -- sha256 of the secret; the secret is never stored
    username     VARCHAR NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL,
    revoked_at   TIMESTAMP
);

CREATE TABLE api_tokens (
    token_id      VARCHAR PRIMARY KEY,
    username      VARCHAR NOT NULL,
    name          VARCHAR NOT NULL,
    secret_hash   VARCHAR NOT NULL,       -- sha256 of the secret
    created_at    TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP,
    revoked_at    TIMESTAMP,
    last_used_at  TIMESTAMP
);

CREATE TABLE login_attempts (
    username  VARCHAR NOT NULL,
    source    VARCHAR NOT NULL,            -- client address, or 'cli'
    attempted_at  TIMESTAMP NOT NULL,
    success   BOOLEAN NOT NULL
);

CREATE TABLE audit_log (
    audit_id     VARCHAR PRIMARY KEY,
    logged_at    TIMESTAMP NOT NULL,
    actor        VARCHAR NOT NULL,
    role         VARCHAR NOT NULL,
    action       VARCHAR NOT NULL,         -- view | export | import | login | denied | write
    object_kind  VARCHAR NOT NULL,
    object_id    VARCHAR,
    site_code    VARCHAR,
    detail       JSON
);
