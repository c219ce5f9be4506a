-- owner: sitetwin.oversight
-- A person's own settings (oversight.preferences): the language the workbench shows them
-- (zh-CN | en; NULL: the browser's Accept-Language decides). Private to the platform: these
-- rows never leave it in an exchange package or the city lake (data.exchange.PRIVATE_TABLES).
CREATE TABLE account_settings (
    username    VARCHAR PRIMARY KEY,      -- accounts.username
    language    VARCHAR,                  -- one of data.i18n.LANGUAGES
    updated_at  TIMESTAMP NOT NULL,       -- UTC
    updated_by  VARCHAR NOT NULL          -- the actor who set it (the person, or an admin)
);
