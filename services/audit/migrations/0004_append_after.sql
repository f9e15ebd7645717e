-- An append after the appender's own head in one round trip instead of three (BEGIN with the
-- tenant, the INSERT, COMMIT): append_after sets the tenant for the call, checks with
-- chain_continues (0003: the chain lock shared, then the head looked up in a snapshot taken after
-- it) that the head is still in the chain, and inserts the batch; it returns how many events it
-- inserted, none when the head is gone. The primary key (org, seq) still refuses a seq another
-- appender took meanwhile. It refuses too (an error, so nothing stays) a batch that does not start
-- right after the head it names, a partial insert, and any isolation level but READ COMMITTED.
-- It runs as the caller (SECURITY INVOKER), under the same row-level security as the statement it
-- replaces, and puts the tenant back as it was before it returns, so the tenant does not outlive
-- the call in a transaction around it. Called alone, the statement is its own transaction, and
-- the shared lock ends with it. The search path is the schema it was created in.

CREATE FUNCTION append_after(p_org uuid, p_seq bigint[], p_at_us bigint[], p_actor text[],
                             p_action text[], p_target text[], p_outcome text[],
                             p_request_id text[], p_trace_id text[], p_prev_hash bytea[],
                             p_hash bytea[], p_head_seq bigint, p_head_hash bytea)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
DECLARE
    n bigint := 0;
    org_before text := coalesce(current_setting('coffer.org_id', true), '');
BEGIN
    -- chain_continues needs a snapshot of its own after the lock, which only READ COMMITTED
    -- gives: under a stricter default the check would see a chain that was removed meanwhile.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'append_after needs READ COMMITTED, not %',
            current_setting('transaction_isolation');
    END IF;
    -- The batch must continue the head it names, with nothing left out.
    IF p_seq[1] IS DISTINCT FROM p_head_seq + 1 OR p_prev_hash[1] IS DISTINCT FROM p_head_hash THEN
        RAISE EXCEPTION 'append_after: the batch does not continue the head it names';
    END IF;
    PERFORM set_config('coffer.org_id', p_org::text, true);
    IF chain_continues(p_org, p_head_seq, p_head_hash) THEN
        INSERT INTO events (org_id, seq, at_us, actor, action, target, outcome, request_id,
                            trace_id, prev_hash, hash)
        SELECT p_org, u.*
          FROM UNNEST(p_seq, p_at_us, p_actor, p_action, p_target, p_outcome, p_request_id,
                      p_trace_id, p_prev_hash, p_hash) AS u;
        GET DIAGNOSTICS n = ROW_COUNT;
        IF n <> cardinality(p_seq) THEN
            RAISE EXCEPTION 'append_after inserted % of % events', n, cardinality(p_seq);
        END IF;
    END IF;
    PERFORM set_config('coffer.org_id', org_before, true);
    RETURN n;
END $$;

REVOKE ALL ON FUNCTION append_after(uuid, bigint[], bigint[], text[], text[], text[], text[],
                                    text[], text[], bytea[], bytea[], bigint, bytea) FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION append_after(uuid, bigint[], bigint[], text[], text[],
                        text[], text[], text[], text[], bytea[], bytea[], bigint, bytea) TO %I',
                   current_setting('coffer.runtime_role'));
END $$;
