-- Scan-only uploads: a per-org daily byte budget, and objects that never outlive their URL.
--
-- usage: bytes of scan-only requests an org created per UTC day, counted at CreateScan and kept
-- when the request itself is deleted, so a budget cannot be reset by deleting scans.
--
-- scans.upload_expires_at: when the request's PUT URL stops working. Once it has passed (plus a
-- grace for a slow PUT), the upload sweep deletes the object, whatever happened (never submitted,
-- or put again after the post-scan delete: a URL can write a key once only while it exists), and
-- an unsubmitted request becomes `expired`. A sweep that failed (the store or auth away, an org
-- being deleted) is tried again after `sweep_after`, so it never blocks the others.
-- coffer.lookup_upload_sweep = '1' may SELECT the requests that are due, across orgs; each is
-- then handled in a transaction of its org.
CREATE TABLE usage (
    org_id uuid NOT NULL,
    day date NOT NULL,
    bytes bigint NOT NULL CHECK (bytes >= 0),
    PRIMARY KEY (org_id, day)
);
ALTER TABLE usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON usage USING (org_id = current_org()) WITH CHECK (org_id = current_org());

ALTER TABLE scans
    ADD COLUMN upload_expires_at timestamptz,
    ADD COLUMN object_swept_at timestamptz,
    ADD COLUMN sweep_after timestamptz,
    DROP CONSTRAINT scans_status_check,
    ADD CONSTRAINT scans_status_check
        CHECK (status IN ('awaiting_upload', 'queued', 'done', 'expired'));
UPDATE scans SET upload_expires_at = created_at + interval '15 minutes'
    WHERE upload_expires_at IS NULL;
ALTER TABLE scans ALTER COLUMN upload_expires_at SET NOT NULL;
CREATE INDEX scans_unswept ON scans (upload_expires_at) WHERE object_swept_at IS NULL;
CREATE POLICY upload_sweep ON scans FOR SELECT USING (
    lookup_key('upload_sweep') = '1' AND object_swept_at IS NULL
    AND status IN ('awaiting_upload', 'done', 'expired')
);
