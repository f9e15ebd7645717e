-- The webhook outbox keeps each event's verdict and hash; once an event is delivered or given
-- up it is of no further use. The retention (coffer.lookup_retention = '1') may now SELECT and
-- DELETE finished deliveries older than the retention, as it does scan-only requests.
CREATE POLICY retention_select ON deliveries FOR SELECT USING (
    lookup_key('retention') = '1' AND (delivered_at IS NOT NULL OR give_up_at < now())
);
CREATE POLICY retention_delete ON deliveries FOR DELETE USING (
    lookup_key('retention') = '1' AND (delivered_at IS NOT NULL OR give_up_at < now())
);
