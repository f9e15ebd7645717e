-- The active-sessions gauge: a count across orgs, and nothing more. The runtime role may call
-- active_session_count(); the function runs as the owner with its own capability setting, and only
-- the owner role's policy honours that setting, so the runtime role still reads no row of another
-- org (setting coffer.lookup_session_count itself shows it nothing).
DO $$
BEGIN
    EXECUTE format('CREATE POLICY session_count ON sessions FOR SELECT TO %I
                        USING (lookup_key(''session_count'') = ''1'')', current_user);
END $$;

-- The capability is set and cleared inside (a function's own SET clause may not name a custom
-- setting for a role that is no superuser).
CREATE FUNCTION active_session_count() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path FROM CURRENT
AS $$
DECLARE
    n bigint;
BEGIN
    PERFORM set_config('coffer.lookup_session_count', '1', true);
    SELECT count(*) INTO n FROM sessions WHERE revoked_at IS NULL AND expires_at > now();
    PERFORM set_config('coffer.lookup_session_count', '', true);
    RETURN n;
END
$$;

REVOKE ALL ON FUNCTION active_session_count() FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION active_session_count() TO %I',
                   current_setting('coffer.runtime_role'));
END $$;
