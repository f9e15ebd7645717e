-- Authenticating a session in one query: a transaction that holds the session lookup capability
-- (coffer.lookup_session = hex of the session id's hash) may also read the membership and the org
-- of that one session, and nothing else. Before, it had to set the tenant and query again.
CREATE POLICY session_lookup ON memberships FOR SELECT USING (
    EXISTS (SELECT 1 FROM sessions s
            WHERE s.id_hash = decode(lookup_key('session'), 'hex')
              AND s.org_id = memberships.org_id AND s.user_id = memberships.user_id)
);
CREATE POLICY session_lookup ON orgs FOR SELECT USING (
    EXISTS (SELECT 1 FROM sessions s
            WHERE s.id_hash = decode(lookup_key('session'), 'hex') AND s.org_id = orgs.id)
);
