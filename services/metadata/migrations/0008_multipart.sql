-- A file above the multipart threshold is uploaded in parts: its row stays `pending_upload` and
-- this row names the store's multipart upload and how the file is cut, until complete (which
-- deletes it), the trash, a purge or the stale-upload sweep (which abort the upload first).
-- `assembled`: the store has made the object from the parts (committed at once), so a complete
-- that failed after that is retried without asking the store again.
CREATE TABLE multipart_uploads (
    file_id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    upload_id text NOT NULL,
    part_size bigint NOT NULL CHECK (part_size > 0),
    part_count integer NOT NULL CHECK (part_count BETWEEN 1 AND 10000),
    assembled boolean NOT NULL DEFAULT false,
    FOREIGN KEY (org_id, file_id) REFERENCES files (org_id, id) ON DELETE CASCADE
);
ALTER TABLE multipart_uploads ENABLE ROW LEVEL SECURITY;
ALTER TABLE multipart_uploads FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON multipart_uploads
    USING (org_id = current_org()) WITH CHECK (org_id = current_org());
