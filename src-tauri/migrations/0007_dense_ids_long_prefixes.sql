-- Local search stays in the millisecond range for every word a user types (issue 16).
--
-- 1. Prefix indexes for 1 to 8 characters (were 1 to 4). Every searched word is a prefix
--    (`cache::search::fts_query`); a prefix longer than every prefix index makes FTS5 read and
--    merge the whole doclist of every word it matches before the first row comes out — 2 to 4
--    ms for a common word of 5 to 8 letters ("today", "meeting") at 1M messages, the slowest
--    queries of the benchmark. With an index it is read like a word, newest first, and the
--    query stops at its limit. Longer words match few messages.
-- 2. Message ids are the message's `ts` in milliseconds (the next free id when another message
--    has it already; `cache::next_id`), no longer `ts << 20`. They still follow time, so the
--    index lists matches newest first, but the gaps between the ids of a word's messages are a
--    million times smaller, and FTS5 stores each as a varint: the index with eight prefix
--    indexes is about the size the one with four had (443 against 419 MB at 1M messages).
--    Renumbered in two steps (negative first) so no new id meets an old one; an id is the
--    larger of its `ts` and the previous id + 1 (a running maximum), in (ts, room, seq) order.
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;

UPDATE messages SET id = -id - 1;

UPDATE messages SET id = n.id
FROM (
    SELECT old, i + max(t - i) OVER (ORDER BY i ROWS UNBOUNDED PRECEDING) AS id
    FROM (
        SELECT -id - 1 AS old, max(ts, 0) AS t,
               row_number() OVER (ORDER BY max(ts, 0), room, seq) AS i
        FROM messages
    )
) AS n
WHERE messages.id = -n.old - 1;

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    plain,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '1 2 3 4 5 6 7 8'
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
