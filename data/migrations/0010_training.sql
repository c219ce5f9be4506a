-- owner: sitetwin.sensors
-- Safety education and online training (安全教育培训): one row per course a worker completed at a
-- site, keyed by the worker's pseudonym (sensors.attendance.pseudonym, never a national id).
-- Dates are the site's calendar days (data.queries.site_time_zone). A worker with records is
-- "trained" at the gate on a day a passed record is valid; without records the gate's own flag counts.

CREATE TABLE training_records (
    site_code     VARCHAR NOT NULL,
    worker_id     VARCHAR NOT NULL,           -- pseudonym, as attendance_events.worker_id
    course        VARCHAR NOT NULL,           -- the course's title as the provider names it
    course_type   VARCHAR NOT NULL,           -- three_level (三级安全教育) | pre_job (岗前) | special (专项) | refresher | daily
    completed_on  DATE NOT NULL,              -- day of the course (its exam)
    hours         DOUBLE NOT NULL,            -- class hours (学时)
    score         DOUBLE,                     -- exam score 0..100, NULL when the course has no exam
    passed        BOOLEAN NOT NULL,
    valid_until   DATE NOT NULL,              -- last day the training counts
    provider      VARCHAR,                    -- who gave it (online platform, the project's safety office)
    import_id     VARCHAR NOT NULL,           -- training_imports row that brought it
    PRIMARY KEY (site_code, worker_id, course, completed_on)
);
CREATE INDEX training_records_worker_idx ON training_records (site_code, worker_id);

-- One row per import (file or ingest batch): what came in, from where; a batch key seen again is
-- skipped, and the same key with other content is refused.
CREATE TABLE training_imports (
    import_id       VARCHAR PRIMARY KEY,      -- device_id '/training/' batch_id for the ingest API; file:<sha256> for files
    site_code       VARCHAR NOT NULL,         -- the site (a file's first site when it holds several)
    source          VARCHAR NOT NULL,         -- csv | json | http | demo
    origin          VARCHAR,                  -- file name, or the posting device
    content_sha256  VARCHAR NOT NULL,
    records         INTEGER NOT NULL,         -- records stored (copies of stored ones not counted)
    imported_at     TIMESTAMP NOT NULL        -- UTC
);
