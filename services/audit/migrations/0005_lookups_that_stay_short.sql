-- The two lookups of an append must stay a few pages however long the org's chain grows; both
-- read all of the org's events in a benchmark once the log had grown.
--
-- 1. The retention lookup (0002) is the owner's alone: retention runs in the owner's pool, and the
--    runtime role never sets coffer.lookup_retention. As a policy for every role it was OR'ed into
--    every read of the runtime role, so the planner could not take the primary key backwards for
--    the chain's head (ORDER BY seq DESC LIMIT 1) and, on statistics from a short chain, took a
--    bitmap of every event of the org over both indexes and sorted it. For the runtime role the
--    one policy left is the tenant's, which the planner checks once per statement.
DROP POLICY retention_lookup ON events;
DO $$
BEGIN
    EXECUTE format('CREATE POLICY retention_lookup ON events FOR SELECT TO %I
                        USING (action = ''org.purge'' AND lookup_key(''retention'') = ''1'')',
                   current_user);
END $$;

-- 2. chain_continues (0003) looks up one event by (org, seq). A connection keeps a function's plans:
--    planned while the chain was short, where the primary key and events_action (org_id, action,
--    seq) cost the same, the lookup kept events_action, which reads every event of the org to
--    find one seq. Planned for each call with its values, it takes the primary key.
ALTER FUNCTION chain_continues(uuid, bigint, bytea) SET plan_cache_mode = force_custom_plan;
