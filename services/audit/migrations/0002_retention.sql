-- Retention after an org purge. Auth appends `org.purge` to an org's log before it deletes the
-- org; once that event is older than the retention time, the audit service removes the org's
-- chain and leaves a tombstone in retired_chains (event count, head hash, purge time).
--
-- The job finds candidates through a SELECT-only lookup capability that shows `org.purge` events
-- of every org and nothing else. The append-only trigger lets exactly one thing through: a DELETE
-- by the schema owner (never the runtime role, which has no DELETE grant) of rows of the org named
-- in coffer.retention_purge. UPDATE and TRUNCATE stay refused for everyone.

CREATE FUNCTION lookup_key(kind text) RETURNS text LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('coffer.lookup_' || kind, true), '') $$;

CREATE POLICY retention_lookup ON events FOR SELECT
    USING (action = 'org.purge' AND lookup_key('retention') = '1');

CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF current_user = (SELECT tableowner FROM pg_tables
                           WHERE schemaname = TG_TABLE_SCHEMA AND tablename = TG_TABLE_NAME)
           AND OLD.org_id::text = current_setting('coffer.retention_purge', true) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TABLE retired_chains (
    org_id uuid PRIMARY KEY,
    events bigint NOT NULL,
    head_hash bytea NOT NULL CHECK (length(head_hash) = 32),
    purged_at_us bigint NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE retired_chains ENABLE ROW LEVEL SECURITY;
ALTER TABLE retired_chains FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON retired_chains
    USING (org_id = current_org()) WITH CHECK (org_id = current_org());
CREATE TRIGGER retired_chains_append_only BEFORE UPDATE OR DELETE ON retired_chains
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

DO $$
BEGIN
    EXECUTE format('GRANT SELECT ON retired_chains TO %I', current_setting('coffer.runtime_role'));
    EXECUTE format('GRANT EXECUTE ON FUNCTION lookup_key(text) TO %I',
                   current_setting('coffer.runtime_role'));
END $$;
