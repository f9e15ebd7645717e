-- Tries that failed on a dependency (the store, clamd unreachable, a peer, the database) rather
-- than on the file. They back off as failed tries do, but do not count toward max_attempts: an
-- outage of a few minutes must not end a file `failed` (and quarantined). scan.max_wait_secs
-- bounds how long a job may wait so, from when it was queued.
ALTER TABLE jobs ADD COLUMN waits integer NOT NULL DEFAULT 0 CHECK (waits >= 0);
