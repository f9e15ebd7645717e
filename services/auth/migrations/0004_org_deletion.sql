-- Org deletion: an owner's request disables the org at once and schedules its purge. The purge
-- job's transaction (coffer.lookup_purge = 'due') sees only orgs whose purge time has passed;
-- deleting an org cascades to every tenant row of this schema.
ALTER TABLE orgs ADD COLUMN purge_after timestamptz;

DROP POLICY tenant ON orgs;
CREATE POLICY tenant ON orgs
    USING (id = current_org() OR (lookup_key('purge') = 'due' AND purge_after < now()))
    WITH CHECK (id = current_org());
