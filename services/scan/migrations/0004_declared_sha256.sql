-- The SHA-256 the uploader declared, carried with the job: a store checks it on a single PUT,
-- but nothing can on an upload in parts, so the scan compares it with the bytes it hashed and
-- other bytes end `failed` ("declared-sha256-mismatch"). "" for none.
ALTER TABLE jobs ADD COLUMN declared_sha256 text NOT NULL DEFAULT ''
    CHECK (declared_sha256 = '' OR declared_sha256 ~ '^[0-9a-f]{64}$');
