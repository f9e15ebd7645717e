-- The scan schema: the job queue, results, scan-only requests, webhook endpoints and deliveries.
-- No table holds a file name, a client address or a file's bytes.
--
-- Every table has forced, fail-closed row-level security on current_setting('coffer.org_id').
-- The workers find work across orgs through narrow capabilities:
--   coffer.lookup_worker = '1'    may SELECT and UPDATE jobs (claim, lease, reap), SELECT results
--                                 (re-queue after a ruleset change)
--   coffer.lookup_delivery = '1'  may SELECT and UPDATE deliveries (the webhook sender)
--   coffer.lookup_retention = '1' may SELECT and DELETE scan-only requests and results past
--                                 their retention
-- Each job is then finished in a transaction of its own org.

CREATE FUNCTION current_org() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('coffer.org_id', true), '')::uuid $$;

CREATE FUNCTION lookup_key(kind text) RETURNS text LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('coffer.lookup_' || kind, true), '') $$;

-- One job per subject (an uploaded file, or a scan-only request); a re-scan re-queues it with a
-- new run_id, and a result is written once per run.
CREATE TABLE jobs (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    subject text NOT NULL CHECK (subject IN ('file', 'scan')),
    subject_id uuid NOT NULL,
    -- Stored files live under <org>/<id>; scan-only uploads under scans/<org>/<id>.
    object_key text NOT NULL CHECK (object_key = CASE subject WHEN 'scan' THEN 'scans/' ELSE '' END
                                                 || org_id::text || '/' || subject_id::text),
    size bigint NOT NULL CHECK (size >= 0),
    content_type text NOT NULL DEFAULT '' CHECK (octet_length(content_type) <= 255),
    extension text NOT NULL DEFAULT '' CHECK (extension ~ '^[a-z0-9]{0,16}$'),
    run_id uuid NOT NULL,
    -- upload: the first scan; rescan: queued again after a ruleset change.
    reason text NOT NULL DEFAULT 'upload' CHECK (reason IN ('upload', 'rescan')),
    state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done')),
    attempts integer NOT NULL DEFAULT 0,
    run_after timestamptz NOT NULL DEFAULT now(),
    lease_owner uuid,
    lease_until timestamptz,
    last_error text,
    queued_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, subject_id)
);
CREATE INDEX jobs_ready ON jobs (run_after) WHERE state = 'queued';
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'running';

CREATE TABLE results (
    org_id uuid NOT NULL,
    subject_id uuid NOT NULL,
    subject text NOT NULL CHECK (subject IN ('file', 'scan')),
    run_id uuid NOT NULL,
    verdict text NOT NULL CHECK (verdict IN ('clean', 'infected', 'suspicious', 'sensitive', 'failed')),
    engines jsonb NOT NULL,
    sha256 text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size bigint,
    detected_type text,
    ruleset_version text NOT NULL,
    versions jsonb NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, subject_id)
);
CREATE INDEX results_ruleset ON results (ruleset_version) WHERE subject = 'file';

-- Scan-only requests: size and the caller's metadata (at most 4 KB), never a name or address.
CREATE TABLE scans (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    size bigint NOT NULL CHECK (size >= 0),
    metadata jsonb,
    status text NOT NULL DEFAULT 'awaiting_upload'
        CHECK (status IN ('awaiting_upload', 'queued', 'done')),
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    CHECK (metadata IS NULL OR octet_length(metadata::text) <= 8192)
);
CREATE INDEX scans_created ON scans (created_at);

CREATE TABLE webhooks (
    org_id uuid PRIMARY KEY,
    url text NOT NULL CHECK (octet_length(url) <= 2048),
    -- AES-256-GCM of the whsec_ secret under the service's webhook key: nonce ‖ ciphertext.
    secret_sealed bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The outbox: written in the transaction that finishes a job, sent by the delivery worker.
CREATE TABLE deliveries (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_at timestamptz NOT NULL DEFAULT now(),
    give_up_at timestamptz NOT NULL,
    delivered_at timestamptz,
    last_status text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_due ON deliveries (next_at) WHERE delivered_at IS NULL;

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
ALTER TABLE results ENABLE ROW LEVEL SECURITY;
ALTER TABLE results FORCE ROW LEVEL SECURITY;
ALTER TABLE scans ENABLE ROW LEVEL SECURITY;
ALTER TABLE scans FORCE ROW LEVEL SECURITY;
ALTER TABLE webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhooks FORCE ROW LEVEL SECURITY;
ALTER TABLE deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE deliveries FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant ON jobs USING (org_id = current_org()) WITH CHECK (org_id = current_org());
CREATE POLICY tenant ON results USING (org_id = current_org()) WITH CHECK (org_id = current_org());
CREATE POLICY tenant ON scans USING (org_id = current_org()) WITH CHECK (org_id = current_org());
CREATE POLICY tenant ON webhooks USING (org_id = current_org()) WITH CHECK (org_id = current_org());
CREATE POLICY tenant ON deliveries USING (org_id = current_org()) WITH CHECK (org_id = current_org());

CREATE POLICY worker_select ON jobs FOR SELECT USING (lookup_key('worker') = '1');
CREATE POLICY worker_update ON jobs FOR UPDATE USING (lookup_key('worker') = '1')
    WITH CHECK (lookup_key('worker') = '1');
CREATE POLICY worker_select ON results FOR SELECT USING (lookup_key('worker') = '1');
CREATE POLICY delivery_select ON deliveries FOR SELECT USING (lookup_key('delivery') = '1');
CREATE POLICY delivery_update ON deliveries FOR UPDATE USING (lookup_key('delivery') = '1')
    WITH CHECK (lookup_key('delivery') = '1');
CREATE POLICY retention_select ON scans FOR SELECT USING (lookup_key('retention') = '1');
CREATE POLICY retention_delete ON scans FOR DELETE USING (lookup_key('retention') = '1');
CREATE POLICY retention_select ON results FOR SELECT USING (lookup_key('retention') = '1');
CREATE POLICY retention_delete ON results FOR DELETE USING (lookup_key('retention') = '1');
CREATE POLICY retention_select ON jobs FOR SELECT USING (lookup_key('retention') = '1');
CREATE POLICY retention_delete ON jobs FOR DELETE USING (lookup_key('retention') = '1');

-- The runtime role gets DML only, on these tables and on any the owner creates here later.
DO $$
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON jobs, results, scans, webhooks, deliveries TO %I',
                   current_setting('coffer.runtime_role'));
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
                   current_schema(), current_setting('coffer.runtime_role'));
    EXECUTE format('GRANT EXECUTE ON FUNCTION current_org(), lookup_key(text) TO %I',
                   current_setting('coffer.runtime_role'));
END $$;
