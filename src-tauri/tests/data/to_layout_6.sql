-- Turns a cache of the current layout back into the one the builds before the cache upgrade
-- (`src-tauri/src/cache/upgrade.rs`) wrote: ids `ts << 20` plus the place within the
-- millisecond and prefix indexes of 1 to 4 characters, as migration 0006 made them. Tests use
-- it to start the app "for the first time after the update" on a cache it really wrote.
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;

UPDATE messages SET id = -id;

UPDATE messages SET id = n.id
FROM (
    SELECT -id AS cur,
           (min(max(ts, 0), 8796093022207) << 20)
               + row_number() OVER (PARTITION BY ts ORDER BY room, seq) - 1 AS id
    FROM messages
) AS n
WHERE messages.id = -n.cur;

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    plain,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '1 2 3 4'
);
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, plain) VALUES (new.id, new.plain);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, plain) VALUES ('delete', old.id, old.plain);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF plain ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, plain) VALUES ('delete', old.id, old.plain);
    INSERT INTO messages_fts (rowid, plain) VALUES (new.id, new.plain);
END;
