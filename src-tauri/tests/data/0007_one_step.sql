-- Local search stays in the millisecond range for every word a user types (issue 16).
--
-- 1. Prefix indexes for 1 to 8 characters (were 1 to 4). Every searched word is a prefix
--    (`cache::search`, `fts_query`); a prefix longer than every prefix index makes FTS5 read and
--    merge the whole doclist of every word it matches before the first row comes out — 2 to 4
--    ms for a common word of 5 to 8 letters ("today", "meeting") at 1M messages, the slowest
--    queries of the benchmark. With an index it is read like a word, newest first, and the
--    query stops at its limit. Longer words match few messages.
-- 2. Message ids count down in milliseconds: `cache::ID_BASE - ts` (2^47 - ts; the next free id
--    below it when another message has it already; `cache::NEXT_ID`), no longer `ts << 20`.
--    Still in time order, so the index lists matches in order and a search stops at its limit,
--    now with `ORDER BY rowid` ascending: FTS5 uses its doclist index to skip ahead in a long
--    list only when reading forwards, so "a rare word AND a common word" jumps between the rare
--    word's matches instead of stepping back through every message with the common word (the
--    slowest queries left, 1-2 ms at 1M; half that forwards). And the gaps between a word's ids,
--    which FTS5 stores as varints, are a million times smaller: the index with eight prefix
--    indexes is about the size the one with four had (443 against 419 MB at 1M messages).
--    Renumbered in two steps (negative first) so no new id meets an old one. In (ts, room, seq)
--    order each message takes the larger of its ts and the previous one's + 1 (a running
--    maximum), and its id is 2^47 minus that.
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;

UPDATE messages SET id = -id - 1;

UPDATE messages SET id = n.id
FROM (
    SELECT old, 140737488355328 - (i + max(t - i) OVER (ORDER BY i ROWS UNBOUNDED PRECEDING)) AS id
    FROM (
        SELECT -id - 1 AS old, min(max(ts, 0), 140737488355327) AS t,
               row_number() OVER (ORDER BY ts, room, seq) AS i
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
