-- Listing a folder is one index range in name order. The COALESCE(...) unique indexes of 0001
-- cannot serve it for the runtime role: under row-level security the planner did not use them
-- for a condition on that expression and read every row of the table, all orgs' (176 pages for
-- a page of 11 out of 3,000 files, against 20 as a superuser). These take plain
-- `folder_id IS NULL` / `folder_id = $1` conditions; the listing reads order by the parent
-- column too, so the index order is the page order (store::sql). Measured by a test: 6 pages.
CREATE INDEX files_listing ON files (org_id, folder_id, name, id) WHERE trashed_at IS NULL;
CREATE INDEX folders_listing ON folders (org_id, parent_id, name, id) WHERE trashed_at IS NULL;
