-- Login throttling, shared by every auth replica. Keys are SHA-256 hashes of "account:<email>"
-- or "address:<ip>": no email or address is stored. Not tenant data (a key exists before any org
-- is known), so the table has no org_id and no row-level security; only auth can reach it.
CREATE TABLE login_throttle (
    key_hash bytea PRIMARY KEY CHECK (length(key_hash) = 32),
    failures integer NOT NULL,
    window_start timestamptz NOT NULL,
    locked_until timestamptz
);
