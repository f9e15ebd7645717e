-- A purged file's object outlives its row by the database's recovery window: a point-in-time
-- restore to any moment of that window brings back rows whose objects must still be there. A
-- purge deletes the row and queues the object here with the time it may go
-- ([metadata] object_delete_delay_secs after the purge); the deletion sweep removes it then. A
-- restore to T has no entry for a purge after T, so such an object is never deleted for a row
-- the restore brought back.
CREATE TABLE object_deletions (
    object_key text PRIMARY KEY,
    org_id uuid NOT NULL,
    size bigint NOT NULL,
    delete_after timestamptz NOT NULL
);
-- The bytes an org has purged that are still stored. They are not its quota's (a purge frees the
-- space at once), but they are bounded by it: used + pending may not pass twice the limit, so
-- uploading and purging in a loop cannot store more than one more quota's worth for the window.
ALTER TABLE quotas ADD COLUMN pending_delete_bytes bigint NOT NULL DEFAULT 0;
CREATE INDEX object_deletions_due ON object_deletions (delete_after);
ALTER TABLE object_deletions ENABLE ROW LEVEL SECURITY;
ALTER TABLE object_deletions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON object_deletions
    USING (org_id = current_org()) WITH CHECK (org_id = current_org());
-- The sweep finds the due entries across orgs: a transaction that sets
-- coffer.lookup_deletions_due (an RFC 3339 time) may SELECT the entries due before then, and
-- nothing else; it deletes each object and its entry in a transaction of the entry's org.
CREATE POLICY deletions_due ON object_deletions FOR SELECT
    USING (delete_after < lookup_key('deletions_due')::timestamptz);
