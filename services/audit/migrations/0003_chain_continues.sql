-- The check of an append after a head the appender itself wrote (store::append_after, one
-- statement instead of lock + head read + INSERT): take the org's chain lock shared, then look for
-- that head in a snapshot taken after the lock. The INSERT's own snapshot is older than the lock,
-- so a check there would still see a chain that retention removed (exclusively locked) while the
-- append waited, and the append would continue a chain that no longer exists. VOLATILE: each call
-- reads with a new snapshot. Runs as the caller, under row-level security, with the schema it was
-- created in as its search path.

CREATE FUNCTION chain_continues(org uuid, head_seq bigint, head_hash bytea) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtextextended(org::text, 11));
    RETURN EXISTS (SELECT 1 FROM events
                   WHERE org_id = org AND seq = head_seq AND hash = head_hash);
END $$;

REVOKE ALL ON FUNCTION chain_continues(uuid, bigint, bytea) FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION chain_continues(uuid, bigint, bytea) TO %I',
                   current_setting('coffer.runtime_role'));
END $$;
