-- The metadata schema: orgs, quotas, folders, files and shares. File and folder names live only
-- here: object keys are <orgId>/<uuid>.
--
-- Every tenant table has forced, fail-closed row-level security on current_setting('coffer.org_id').
-- Share links are redeemed before the tenant is known: a transaction that sets
-- coffer.lookup_share to the hex SHA-256 of a link's token may SELECT that one share, nothing else.
-- Parents and files reference their folder with (org_id, id), so a folder of another org can
-- never be a parent, whatever the code above does.

CREATE FUNCTION current_org() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('coffer.org_id', true), '')::uuid $$;

CREATE FUNCTION lookup_key(kind text) RETURNS text LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('coffer.lookup_' || kind, true), '') $$;

CREATE TABLE orgs (
    id uuid PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE quotas (
    org_id uuid PRIMARY KEY REFERENCES orgs (id) ON DELETE CASCADE,
    limit_bytes bigint NOT NULL CHECK (limit_bytes >= 0),
    used_bytes bigint NOT NULL DEFAULT 0 CHECK (used_bytes >= 0)
);

CREATE TABLE folders (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    parent_id uuid,
    name text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 255),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    trashed_at timestamptz,
    UNIQUE (org_id, id),
    CHECK (parent_id IS DISTINCT FROM id),
    FOREIGN KEY (org_id, parent_id) REFERENCES folders (org_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX folders_live_name ON folders
    (org_id, COALESCE(parent_id, '00000000-0000-0000-0000-000000000000'::uuid), name)
    WHERE trashed_at IS NULL;
CREATE INDEX folders_parent ON folders (org_id, parent_id);

CREATE TABLE files (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    folder_id uuid,
    name text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 255),
    object_key text NOT NULL UNIQUE CHECK (object_key = org_id::text || '/' || id::text),
    size bigint NOT NULL CHECK (size >= 0),
    content_type text NOT NULL,
    sha256 text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    state text NOT NULL CHECK (state IN ('pending_upload', 'scanning', 'available', 'quarantined')),
    verdict text CHECK (verdict IN ('clean', 'infected', 'suspicious', 'sensitive', 'failed')),
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    trashed_at timestamptz,
    UNIQUE (org_id, id),
    FOREIGN KEY (org_id, folder_id) REFERENCES folders (org_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX files_live_name ON files
    (org_id, COALESCE(folder_id, '00000000-0000-0000-0000-000000000000'::uuid), name)
    WHERE trashed_at IS NULL;
CREATE INDEX files_folder ON files (org_id, folder_id);

CREATE TABLE shares (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    file_id uuid NOT NULL,
    token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    password_hash text,
    max_downloads integer CHECK (max_downloads > 0),
    downloads integer NOT NULL DEFAULT 0 CHECK (downloads >= 0),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    created_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (org_id, file_id) REFERENCES files (org_id, id) ON DELETE CASCADE
);
CREATE INDEX shares_file ON shares (org_id, file_id);

ALTER TABLE orgs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orgs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON orgs USING (id = current_org()) WITH CHECK (id = current_org());

ALTER TABLE quotas ENABLE ROW LEVEL SECURITY;
ALTER TABLE quotas FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON quotas USING (org_id = current_org()) WITH CHECK (org_id = current_org());

ALTER TABLE folders ENABLE ROW LEVEL SECURITY;
ALTER TABLE folders FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON folders USING (org_id = current_org()) WITH CHECK (org_id = current_org());

ALTER TABLE files ENABLE ROW LEVEL SECURITY;
ALTER TABLE files FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON files USING (org_id = current_org()) WITH CHECK (org_id = current_org());

ALTER TABLE shares ENABLE ROW LEVEL SECURITY;
ALTER TABLE shares FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON shares USING (org_id = current_org()) WITH CHECK (org_id = current_org());
CREATE POLICY lookup ON shares FOR SELECT USING (token_hash = decode(lookup_key('share'), 'hex'));

-- The runtime role gets DML only, on these tables and on any the owner creates here later.
DO $$
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON orgs, quotas, folders, files, shares TO %I',
                   current_setting('coffer.runtime_role'));
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
                   current_schema(), current_setting('coffer.runtime_role'));
    EXECUTE format('GRANT EXECUTE ON FUNCTION current_org(), lookup_key(text) TO %I',
                   current_setting('coffer.runtime_role'));
END $$;
