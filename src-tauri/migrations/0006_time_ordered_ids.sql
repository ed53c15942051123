-- Local search answers in milliseconds at a million cached messages (issue 16).
--
-- 1. Message ids follow time. A message's id is `ts << 20` plus its place among the messages
--    of the same millisecond (`cache::ID_TS_SHIFT`), so the FTS index, which lists rows by id,
--    lists them newest first: a search reads its first 100 matches and stops, instead of
--    sorting every match by `ts`. Before, ids were given in the order rows arrived, and
--    history pages fetched later (older messages) got higher ids. Renumbered in two steps
--    (negative first) so no new id meets an old one.
-- 2. Prefix indexes for prefixes of 1 to 4 characters. Every searched word is a prefix
--    (`cache::fts_query`); without an index FTS5 merges the lists of every word with that
--    prefix in full before it can return the first row (tens of ms for a common prefix at 1M
--    messages), with one it reads a prefix like a word. Longer prefixes match few words. The
--    index grows (about 1.7× at 1M messages).
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;

UPDATE messages SET id = -id;

UPDATE messages SET id = n.id
FROM (
    SELECT -id AS old,
           (min(max(ts, 0), 8796093022207) << 20)
               + row_number() OVER (PARTITION BY ts ORDER BY room, seq) - 1 AS id
    FROM messages
) AS n
WHERE messages.id = -n.old;

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
