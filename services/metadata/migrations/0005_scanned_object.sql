-- The object a file's verdict is about: its ETag and (where the store versions objects) its
-- version id, read by HEAD at complete. The scan reads exactly that object, and every download
-- URL is signed for it, so the bytes a client can download are the bytes that were scanned,
-- even if the key were written again with the store's own credentials.
ALTER TABLE files
    ADD COLUMN object_etag text CHECK (octet_length(object_etag) <= 128),
    ADD COLUMN object_version text CHECK (octet_length(object_version) <= 128);
