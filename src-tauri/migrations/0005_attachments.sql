-- Attachments (issue 14). A message keeps its files' metadata (`attachments`: a JSON array of
-- the server's Attachment objects), so history shows them offline; the bytes live in the blob
-- cache (a folder beside this file, bounded, least recently used first out).
ALTER TABLE messages ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]';

-- An outbox message with files: `files` lists them as attached (JSON array of {name, size});
-- their bytes are copies in the staging folder (`staging/<client_id>/<position>`), so the
-- originals may go. `attachments` grows as each file is uploaded, in order (the server's
-- Attachment objects); the message is sent once it is as long as `files`.
ALTER TABLE outbox ADD COLUMN files TEXT NOT NULL DEFAULT '[]';
ALTER TABLE outbox ADD COLUMN attachments TEXT NOT NULL DEFAULT '[]';
