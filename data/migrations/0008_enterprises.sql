-- owner: sitetwin.data
-- The enterprise tier (Jilin's 主管部门、企业、项目): construction enterprises as records, each
-- site's construction enterprise (sites.enterprise_code) and subcontractors, and the site's
-- IANA time zone. An account of the ``enterprise`` role names its enterprise in
-- accounts.enterprise_code, which oversight's own migration 0014_account_enterprise adds.

CREATE TABLE enterprises (
    enterprise_code  VARCHAR PRIMARY KEY,    -- ASCII handle, e.g. WHCJ (the platforms' unified id)
    name             VARCHAR NOT NULL,       -- the registered name, e.g. 中建三局集团有限公司
    credit_code      VARCHAR NOT NULL UNIQUE,-- 统一社会信用代码, 18 characters, check digit per GB 32100-2015
    kind             VARCHAR NOT NULL,       -- general_contractor | specialty_contractor | labour_subcontractor | ...
    created_at       TIMESTAMP NOT NULL
);

-- Subcontractors working on a site (its construction enterprise is sites.enterprise_code).
CREATE TABLE site_subcontractors (
    site_code        VARCHAR NOT NULL,
    enterprise_code  VARCHAR NOT NULL,
    scope_of_work    VARCHAR,                -- e.g. curtain wall, labour
    PRIMARY KEY (site_code, enterprise_code)
);

ALTER TABLE sites ADD COLUMN enterprise_code VARCHAR;           -- the site's construction enterprise (施工企业)
ALTER TABLE sites ADD COLUMN time_zone VARCHAR DEFAULT 'Asia/Shanghai';   -- IANA; the site's days and dates
