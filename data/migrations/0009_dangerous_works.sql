-- owner: sitetwin.oversight
-- Dangerous works (危大工程): per site, the register of dangerous sub-projects as the national rules
-- define them (住建部令第37号, 建办质〔2018〕31号), with the special plan's approval (专项施工方案),
-- the expert review of works beyond a certain scale (超过一定规模, 专家论证), their start and end,
-- who answers for them and the model elements and zones they concern. Dates are the site's
-- calendar days; zones are metres in the site's local frame (world = local + origin).

CREATE TABLE dangerous_works (
    work_id          VARCHAR PRIMARY KEY,    -- lowercase UUID
    site_code        VARCHAR NOT NULL,
    code             VARCHAR NOT NULL,       -- the site's own reference (e.g. DW-03), unique per site
    work_type        VARCHAR NOT NULL,       -- foundation_pit | formwork_support | lifting_installation | scaffolding |
                                             -- demolition | underground_excavation | curtain_wall | other
    scale            VARCHAR NOT NULL,       -- dangerous (危大) | beyond_scale (超过一定规模: expert review required)
    title            VARCHAR NOT NULL,
    description      VARCHAR,
    responsible      VARCHAR NOT NULL,       -- the person who answers for the works on site
    planned_start    DATE NOT NULL,
    planned_end      DATE NOT NULL,
    review_state     VARCHAR NOT NULL,       -- not_required | pending | passed | failed
    review_on        DATE,                   -- day of the latest expert review
    plan_approved_on DATE,                   -- day the special plan was approved (NULL: not approved)
    plan_approved_by VARCHAR,
    actual_start     DATE,
    actual_end       DATE,
    state            VARCHAR NOT NULL,       -- planned | approved | active | finished (from the dates above)
    global_ids       JSON NOT NULL,          -- list of IFC GlobalIds of the site's elements concerned
    zone             JSON,                   -- {"polygon_m": [[x, y], ...], "z_min_m": z0, "z_max_m": z1} or NULL
    created_by       VARCHAR NOT NULL,
    created_at       TIMESTAMP NOT NULL,     -- UTC
    updated_at       TIMESTAMP NOT NULL,     -- UTC
    UNIQUE (site_code, code)
);
CREATE INDEX dangerous_works_site_idx ON dangerous_works (site_code);

-- Every change of a work's record, in order: registered, reviewed, approved, started, finished, imported.
CREATE TABLE dangerous_work_events (
    event_id     VARCHAR PRIMARY KEY,        -- lowercase UUID
    work_id      VARCHAR NOT NULL,
    site_code    VARCHAR NOT NULL,
    seq          INTEGER NOT NULL,           -- 1, 2, ... within a work
    occurred_at  TIMESTAMP NOT NULL,         -- UTC
    actor        VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,           -- registered | imported | reviewed | approved | started | finished
    on_day       DATE,                       -- the day the event names (review, approval, start, end)
    note         VARCHAR,
    UNIQUE (work_id, seq)
);
CREATE INDEX dangerous_work_events_site_idx ON dangerous_work_events (site_code);
