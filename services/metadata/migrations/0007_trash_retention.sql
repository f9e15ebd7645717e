-- The trash empties itself: files trashed longer than [metadata] trash_retention_days are
-- purged by a job. It finds them across orgs: a transaction that sets coffer.lookup_trash_before
-- (an RFC 3339 time) may SELECT the files trashed before then, and nothing else; it purges each in
-- a transaction of that file's org.
CREATE POLICY trash_expired ON files FOR SELECT USING (
    trashed_at IS NOT NULL
    AND trashed_at < lookup_key('trash_before')::timestamptz
);
CREATE INDEX files_trashed ON files (trashed_at) WHERE trashed_at IS NOT NULL;
