-- Each org's scan settings: the NSFW policy and its thresholds (no row: the service's defaults),
-- and the verdict `nsfw`.
CREATE TABLE org_settings (
    org_id uuid PRIMARY KEY,
    nsfw_policy text NOT NULL CHECK (nsfw_policy IN ('off', 'flag', 'quarantine')),
    nsfw_porn real NOT NULL CHECK (nsfw_porn > 0 AND nsfw_porn <= 1),
    nsfw_hentai real NOT NULL CHECK (nsfw_hentai > 0 AND nsfw_hentai <= 1),
    nsfw_sexy real NOT NULL CHECK (nsfw_sexy > 0 AND nsfw_sexy <= 1),
    updated_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE org_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE org_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON org_settings
    USING (org_id = current_org()) WITH CHECK (org_id = current_org());

-- The verdict `nsfw`: an image the NSFW engine flags under the org's thresholds.
ALTER TABLE results DROP CONSTRAINT results_verdict_check;
ALTER TABLE results ADD CONSTRAINT results_verdict_check
    CHECK (verdict IN ('clean', 'nsfw', 'infected', 'suspicious', 'sensitive', 'failed'));

-- ClamAV's signature database a result was reached with (NULL: none): beside the rules and model
-- of `ruleset_version`, compared by number, so only an older database re-scans.
ALTER TABLE results ADD COLUMN clamav_db integer;
