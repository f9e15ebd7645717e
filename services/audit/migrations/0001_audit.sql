-- The audit schema: events per org in a hash chain (libs/auditlog), and signed checkpoints.
--
-- Append-only: the runtime role has SELECT and INSERT only, and triggers refuse UPDATE, DELETE
-- and TRUNCATE for everyone, the owner included. There is no foreign key to anything: purging a
-- file or an org elsewhere cannot cascade into the log. Forced row-level security on the org, as
-- everywhere. No file name or byte is ever stored here: targets are ids.

CREATE FUNCTION current_org() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('coffer.org_id', true), '')::uuid $$;

CREATE TABLE events (
    org_id uuid NOT NULL,
    seq bigint NOT NULL CHECK (seq >= 1),
    at_us bigint NOT NULL,
    actor text NOT NULL CHECK (length(actor) <= 100),
    action text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),
    target text NOT NULL CHECK (length(target) <= 200),
    outcome text NOT NULL CHECK (outcome IN ('success', 'failure')),
    request_id text NOT NULL CHECK (length(request_id) <= 64),
    trace_id text NOT NULL CHECK (length(trace_id) <= 64),
    prev_hash bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (org_id, seq)
);
CREATE INDEX events_action ON events (org_id, action, seq);

CREATE TABLE checkpoints (
    org_id uuid NOT NULL,
    seq bigint NOT NULL,
    hash bytea NOT NULL CHECK (length(hash) = 32),
    at_us bigint NOT NULL,
    prev_checkpoint_seq bigint NOT NULL,
    key_id text NOT NULL,
    signature text NOT NULL,
    PRIMARY KEY (org_id, seq),
    FOREIGN KEY (org_id, seq) REFERENCES events (org_id, seq)
);

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON events USING (org_id = current_org()) WITH CHECK (org_id = current_org());

ALTER TABLE checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON checkpoints USING (org_id = current_org()) WITH CHECK (org_id = current_org());

DO $$
BEGIN
    EXECUTE format('GRANT SELECT, INSERT ON events, checkpoints TO %I',
                   current_setting('coffer.runtime_role'));
    EXECUTE format('GRANT EXECUTE ON FUNCTION current_org() TO %I',
                   current_setting('coffer.runtime_role'));
END $$;
