-- DELETE /v1/scans/{id}: the caller deletes a scan-only request's verdict, hash and metadata.
-- Its result, jobs and webhook deliveries go at once; the row stays, without its metadata and
-- marked deleted, until the upload sweep has deleted its object (the request's URL may still
-- write it until its window closes) and the retention removes it. No reader sees a deleted row.
ALTER TABLE scans ADD COLUMN deleted_at timestamptz;
-- Every existing row has no deleted_at: the check needs no scan of the table under its lock.
ALTER TABLE scans ADD CONSTRAINT scans_deleted_keeps_no_metadata
    CHECK (deleted_at IS NULL OR metadata IS NULL) NOT VALID;
-- A deletion finds the request's deliveries without reading the whole outbox.
CREATE INDEX deliveries_scan ON deliveries ((payload -> 'data' ->> 'scan_id'))
    WHERE event_type = 'scan.completed';
