-- The verdict `nsfw` (an image the NSFW engine flags, and nothing worse): available or
-- quarantined by the org's policy, which the scan service applies when it records the verdict.
ALTER TABLE files DROP CONSTRAINT files_verdict_check;
ALTER TABLE files ADD CONSTRAINT files_verdict_check
    CHECK (verdict IN ('clean', 'nsfw', 'infected', 'suspicious', 'sensitive', 'failed'));
