-- A file above the multipart threshold is uploaded in parts: its row stays `pending_upload` and
-- this row names the store's multipart upload and how the file is cut, until complete (which
-- deletes it), the trash, a purge or the stale-upload sweep (which abort the upload first).
CREATE TABLE multipart_uploads (
    file_id uuid PRIMARY KEY REFERENCES files (id) ON DELETE CASCADE,
    org_id uuid NOT NULL,
    upload_id text NOT NULL,
    part_size bigint NOT NULL CHECK (part_size > 0),
    part_count integer NOT NULL CHECK (part_count BETWEEN 1 AND 10000)
);
ALTER TABLE multipart_uploads ENABLE ROW LEVEL SECURITY;
ALTER TABLE multipart_uploads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON multipart_uploads
    USING (org_id = current_org()) WITH CHECK (org_id = current_org());
