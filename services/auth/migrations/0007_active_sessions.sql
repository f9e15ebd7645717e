-- The active-sessions gauge: a count across orgs, and nothing more. The runtime role may call
-- active_session_count(idle_secs); the function runs as the owner with its own capability
-- setting, and only the owner role's policy honours that setting, so the runtime role still reads
-- no row of another org (setting coffer.lookup_session_count itself shows it nothing).
--
-- The function's search path is this schema, then pg_temp *last*: a temporary `sessions` view
-- the caller made cannot stand in for the table (pg_temp is searched first when it is not named),
-- so nothing of the caller's runs as the owner. The capability is set and cleared inside (a
-- function's own SET clause may not name a custom setting for a role that is no superuser).
DO $$
BEGIN
    EXECUTE format('CREATE POLICY session_count ON sessions FOR SELECT TO %I
                        USING (lookup_key(''session_count'') = ''1'')', current_user);
    EXECUTE format($f$
        CREATE FUNCTION active_session_count(idle_secs bigint) RETURNS bigint
            LANGUAGE plpgsql VOLATILE SECURITY DEFINER
            SET search_path = %I, pg_temp
        AS $body$
        DECLARE
            n bigint;
        BEGIN
            PERFORM set_config('coffer.lookup_session_count', '1', true);
            SELECT count(*) INTO n FROM %I.sessions
             WHERE revoked_at IS NULL AND expires_at > now()
               AND last_seen_at > now() - make_interval(secs => idle_secs);
            PERFORM set_config('coffer.lookup_session_count', '', true);
            RETURN n;
        END
        $body$ $f$, current_schema(), current_schema());
    EXECUTE 'REVOKE ALL ON FUNCTION active_session_count(bigint) FROM PUBLIC';
    EXECUTE format('GRANT EXECUTE ON FUNCTION active_session_count(bigint) TO %I',
                   current_setting('coffer.runtime_role'));
END $$;
