-- The object a job reads: its ETag and (where the store versions objects) version id, as
-- metadata (or SubmitScan) found them by HEAD. The worker's presigned GET is pinned to them (the
-- store itself refuses other bytes), and the result keeps the ETag of what was scanned.
ALTER TABLE jobs
    ADD COLUMN object_etag text NOT NULL DEFAULT '' CHECK (octet_length(object_etag) <= 128),
    ADD COLUMN object_version text NOT NULL DEFAULT '' CHECK (octet_length(object_version) <= 128);
ALTER TABLE results
    ADD COLUMN object_etag text NOT NULL DEFAULT '' CHECK (octet_length(object_etag) <= 128);
