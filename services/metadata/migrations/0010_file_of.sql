-- Reading one file of an org in one round trip instead of three (BEGIN with the tenant, the
-- SELECT, COMMIT), for the download: file_of sets the tenant and reads the row under the same
-- row-level security as store::file in a TenantTx, naming the org too (a transaction around it
-- that holds another lookup capability of files sees no other org's file through it). It runs as the caller (SECURITY INVOKER) and
-- puts the tenant back as it was before it returns, so the tenant does not outlive the call in a
-- transaction around it; called alone, the statement is its own transaction anyway. The search
-- path is the schema it was created in.

CREATE FUNCTION file_of(p_org uuid, p_id uuid) RETURNS SETOF files
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
DECLARE
    org_before text := coalesce(current_setting('coffer.org_id', true), '');
BEGIN
    PERFORM set_config('coffer.org_id', p_org::text, true);
    RETURN QUERY SELECT * FROM files WHERE org_id = p_org AND id = p_id;
    PERFORM set_config('coffer.org_id', org_before, true);
END $$;

REVOKE ALL ON FUNCTION file_of(uuid, uuid) FROM PUBLIC;
DO $$
BEGIN
    EXECUTE format('GRANT EXECUTE ON FUNCTION file_of(uuid, uuid) TO %I',
                   current_setting('coffer.runtime_role'));
END $$;
