-- owner: sitetwin.cluster
-- The cluster's ledger (cluster/): one row per work unit of a manifest (`sitetwin cluster run`)
-- that reached this store, keyed by the unit's identity: the sha256 of its kind, site, parameters
-- and the content hashes of its input files. A rerun skips the units whose key is done here; a
-- failed unit keeps its one-line error until a later run succeeds. Times are naive UTC.

CREATE TABLE cluster_units (
    unit_key     VARCHAR PRIMARY KEY,      -- sha256 hex of the unit's identity (cluster.manifest.unit_key)
    kind         VARCHAR NOT NULL CHECK (kind IN ('model', 'survey', 'detect', 'score')),
    site_code    VARCHAR NOT NULL,
    manifest     VARCHAR,                  -- the manifest file the unit came from (last run)
    unit_index   INTEGER,                  -- its 1-based position there
    run_id       VARCHAR NOT NULL,         -- the run that last started it
    status       VARCHAR NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    error        VARCHAR,                  -- one line, for status 'failed'
    attempts     INTEGER NOT NULL,         -- attempts in run_id (a worker lost mid-unit is retried)
    writer       VARCHAR,                  -- host:pid of the process that wrote the unit's results
    result       JSON,                     -- a small summary: model ids, survey id, detector run, grade
    started_at   TIMESTAMP NOT NULL,       -- when the unit began (a lost attempt's start is kept)
    finished_at  TIMESTAMP,
    seconds      DOUBLE                    -- the last attempt's duration
);
