-- Authenticating an API key in one round trip instead of seven (BEGIN, the capability, the key,
-- the tenant, the membership, the use, COMMIT): resolve_api_key sets the API-key lookup
-- capability, reads the live key by its prefix (policy tenant on api_keys, 0001), then gives the
-- capability up for the key's org and reads the user's role there, if the user is still a member
-- and the org is not disabled. It returns the stored secret hash: the service compares it with the
-- presented one in constant time, and only then, and only when `o_due` (first use, or the last one
-- recorded 30 s ago or more), writes last_used_at in a transaction of the key's org.
--
-- It runs as the caller (SECURITY INVOKER), so row-level security is what it was, and it puts the
-- capability and the tenant back as they were before it returns (see 0008 for why a SET clause
-- would not), so neither outlives the call. The search path is the schema it was created in.

CREATE FUNCTION resolve_api_key(p_prefix text)
RETURNS TABLE (o_id uuid, o_org_id uuid, o_user_id uuid, o_secret_hash bytea, o_scopes text[],
               o_role text, o_due boolean)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
DECLARE
    lookup_before text := coalesce(current_setting('coffer.lookup_api_key', true), '');
    org_before text := coalesce(current_setting('coffer.org_id', true), '');
BEGIN
    PERFORM set_config('coffer.lookup_api_key', p_prefix, true);
    SELECT k.id, k.org_id, k.user_id, k.secret_hash, k.scopes,
           k.last_used_at IS NULL OR k.last_used_at < now() - interval '30 seconds'
      INTO o_id, o_org_id, o_user_id, o_secret_hash, o_scopes, o_due
      FROM api_keys k
     WHERE k.prefix = p_prefix AND k.revoked_at IS NULL;
    IF FOUND THEN
        PERFORM set_config('coffer.lookup_api_key', '', true),
                set_config('coffer.org_id', o_org_id::text, true);
        SELECT m.role INTO o_role
          FROM memberships m
          JOIN orgs o ON o.id = m.org_id AND o.disabled_at IS NULL
         WHERE m.org_id = o_org_id AND m.user_id = o_user_id;
        IF FOUND THEN
            RETURN NEXT;
        END IF;
    END IF;
    PERFORM set_config('coffer.lookup_api_key', lookup_before, true),
            set_config('coffer.org_id', org_before, true);
END $$;

REVOKE ALL ON FUNCTION resolve_api_key(text) FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION resolve_api_key(text) TO %I',
                   current_setting('coffer.runtime_role'));
END $$;
