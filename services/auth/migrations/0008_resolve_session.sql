-- Authenticating a session in one round trip instead of three (BEGIN with the capability, the
-- SELECT, COMMIT): resolve_session sets the session lookup capability, reads the live session with
-- its membership and org exactly as store::resolve_session did (policies session_lookup, 0005),
-- and, when the request uses the session and last_seen_at is due, gives the capability up for the
-- session's org before it writes last_seen_at, as TenantTx::adopt did.
--
-- It runs as the caller (SECURITY INVOKER), so row-level security is what it was. It puts the
-- capability and the tenant back as they were before it returns (a function's SET clause would
-- restore only the settings it names, and a custom one cannot be named there by a role that is no
-- superuser), so neither outlives the call in a transaction around it; called alone, the statement
-- is its own transaction anyway. The search path is the schema it was created in.

CREATE FUNCTION resolve_session(p_id_hash bytea, p_idle_secs float8, p_touch_secs float8,
                                p_used boolean)
RETURNS TABLE (o_org_id uuid, o_user_id uuid, o_role text)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
DECLARE
    due boolean;
    lookup_before text := coalesce(current_setting('coffer.lookup_session', true), '');
    org_before text := coalesce(current_setting('coffer.org_id', true), '');
BEGIN
    PERFORM set_config('coffer.lookup_session', encode(p_id_hash, 'hex'), true);
    SELECT s.org_id, s.user_id, m.role, s.last_seen_at < now() - make_interval(secs => p_touch_secs)
      INTO o_org_id, o_user_id, o_role, due
      FROM sessions s
      JOIN memberships m ON m.org_id = s.org_id AND m.user_id = s.user_id
      JOIN orgs o ON o.id = s.org_id AND o.disabled_at IS NULL
     WHERE s.id_hash = p_id_hash AND s.revoked_at IS NULL AND s.expires_at > now()
       AND s.last_seen_at > now() - make_interval(secs => p_idle_secs);
    IF FOUND THEN
        IF due AND p_used THEN
            PERFORM set_config('coffer.lookup_session', '', true),
                    set_config('coffer.org_id', o_org_id::text, true);
            UPDATE sessions SET last_seen_at = now() WHERE id_hash = p_id_hash;
        END IF;
        RETURN NEXT;
    END IF;
    PERFORM set_config('coffer.lookup_session', lookup_before, true),
            set_config('coffer.org_id', org_before, true);
END $$;

REVOKE ALL ON FUNCTION resolve_session(bytea, float8, float8, boolean) FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION resolve_session(bytea, float8, float8, boolean) TO %I',
                   current_setting('coffer.runtime_role'));
END $$;
