-- The auth schema: organisations, users, memberships, sessions and API keys.
--
-- Every table is tenant-scoped with forced, fail-closed row-level security on
-- current_setting('coffer.org_id'). Three reads must happen before the tenant is known: login
-- (user by email), a session (by the hash of its id) and an API key (by its prefix). Each is a
-- "lookup capability" in the same policy: a transaction that sets coffer.lookup_<kind> sees only
-- the row whose secret-derived key it names, and nothing else. A connection that sets neither
-- sees no row at all.

CREATE FUNCTION current_org() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('coffer.org_id', true), '')::uuid $$;

CREATE FUNCTION lookup_key(kind text) RETURNS text LANGUAGE sql STABLE AS
$$ SELECT NULLIF(current_setting('coffer.lookup_' || kind, true), '') $$;

CREATE TABLE orgs (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

CREATE TABLE users (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    email text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL,
    totp_enabled boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    PRIMARY KEY (org_id, user_id)
);

CREATE TABLE sessions (
    id_hash bytea PRIMARY KEY CHECK (length(id_hash) = 32),
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX sessions_user ON sessions (org_id, user_id);

CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix text NOT NULL UNIQUE CHECK (prefix ~ '^[a-z0-9]{8}$'),
    secret_hash bytea NOT NULL CHECK (length(secret_hash) = 32),
    scopes text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at);

ALTER TABLE orgs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orgs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON orgs USING (id = current_org()) WITH CHECK (id = current_org());

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON users
    USING (org_id = current_org() OR email = lookup_key('email'))
    WITH CHECK (org_id = current_org());

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON memberships USING (org_id = current_org()) WITH CHECK (org_id = current_org());

ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON sessions
    USING (org_id = current_org() OR id_hash = decode(lookup_key('session'), 'hex'))
    WITH CHECK (org_id = current_org());

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON api_keys
    USING (org_id = current_org() OR prefix = lookup_key('api_key'))
    WITH CHECK (org_id = current_org());

-- The runtime role gets DML only, on these tables and on any the owner creates here later.
DO $$
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON orgs, users, memberships, sessions, api_keys TO %I',
                   current_setting('coffer.runtime_role'));
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA auth GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
                   current_setting('coffer.runtime_role'));
    EXECUTE format('GRANT EXECUTE ON FUNCTION current_org(), lookup_key(text) TO %I',
                   current_setting('coffer.runtime_role'));
END $$;
