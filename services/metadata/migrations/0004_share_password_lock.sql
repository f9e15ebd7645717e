-- Share-password guessing: failures are counted per share; from `share_password_attempts` on,
-- every further failure locks the share's password for longer (1 s doubling, capped), and a
-- locked share answers 429 without hashing anything. A right password resets the count.
ALTER TABLE shares
    ADD COLUMN password_failures integer NOT NULL DEFAULT 0 CHECK (password_failures >= 0),
    ADD COLUMN password_locked_until timestamptz;
