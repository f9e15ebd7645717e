-- The stale-upload sweep: files created but never completed keep their quota and may have left an
-- object behind. The sweep must find them across orgs, before it knows any tenant. A transaction
-- that sets coffer.lookup_sweep_before (an RFC 3339 time) may SELECT the files still in
-- pending_upload created before then, and nothing else; it then handles each one in a
-- transaction of that file's org.
CREATE POLICY stale_upload_sweep ON files FOR SELECT USING (
    state = 'pending_upload'
    AND created_at < lookup_key('sweep_before')::timestamptz
);
CREATE INDEX files_pending ON files (created_at) WHERE state = 'pending_upload';
