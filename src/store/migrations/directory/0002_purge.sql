-- Purged organisations: keys destroyed, tenant database removed.
ALTER TABLE orgs ADD COLUMN purged_at BIGINT;
