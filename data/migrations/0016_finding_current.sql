-- owner: sitetwin.oversight
-- Each finding as of its newest event, kept by oversight in the same transaction as every event it appends
-- (oversight.finding_state), so that a rollup of a city's million findings as of today reads one row per
-- finding instead of folding two million events. It is derived, never the record: finding_events is, and a
-- rollup for a day before a finding's newest event folds that finding's events as before. The fixed fields a
-- rollup groups by (site, severity, raised_at) are copied from findings, whose rows never change.
CREATE TABLE finding_current (
    finding_id     VARCHAR PRIMARY KEY,
    site_code      VARCHAR NOT NULL,
    severity       VARCHAR NOT NULL,
    raised_at      TIMESTAMP NOT NULL,
    status         VARCHAR,              -- the status of the highest-seq event that sets one
    due            DATE,                 -- the due date of the highest-seq event that sets one
    closed_at      TIMESTAMP,            -- the latest occurred_at of a verified_closed event
    event_count    INTEGER NOT NULL,
    last_event_at  TIMESTAMP NOT NULL    -- the latest occurred_at of any event (not the highest seq's)
);

-- a store made before this migration: every finding's state from its events
INSERT INTO finding_current
SELECT f.finding_id, f.site_code, f.severity, f.raised_at,
       arg_max(e.status, e.seq) FILTER (WHERE e.status IS NOT NULL),
       arg_max(e.due, e.seq) FILTER (WHERE e.due IS NOT NULL),
       max(e.occurred_at) FILTER (WHERE e.status = 'verified_closed'),
       count(*), max(e.occurred_at)
FROM findings f JOIN finding_events e USING (finding_id)
GROUP BY f.finding_id, f.site_code, f.severity, f.raised_at;
