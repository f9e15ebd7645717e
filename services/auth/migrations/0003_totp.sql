-- TOTP (RFC 6238). Seeds are AES-256-GCM ciphertexts (nonce || ciphertext, the user id as
-- associated data) under a key from a secret file; the database never holds a plaintext seed.
-- totp_last_step makes every accepted code single-use.
ALTER TABLE users
    ADD COLUMN totp_secret bytea,
    ADD COLUMN totp_pending bytea,
    ADD COLUMN totp_last_step bigint NOT NULL DEFAULT 0;
