-- The org purge appends `org.purge` to the org's audit log once, when it starts; a purge stopped
-- half-way (a service away) is taken up again without a second event.
ALTER TABLE orgs ADD COLUMN purge_started_at timestamptz;
