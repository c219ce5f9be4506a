-- owner: sitetwin.oversight
-- An account of the ``enterprise`` role names its enterprise (data's enterprises, migration 0008):
-- its scope is that enterprise's sites (oversight.scope). NULL for every other role.
-- IF NOT EXISTS: stores migrated before this column moved here got it from 0008.
ALTER TABLE accounts ADD COLUMN IF NOT EXISTS enterprise_code VARCHAR;
