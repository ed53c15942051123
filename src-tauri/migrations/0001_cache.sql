-- The desktop app's local cache. One account at a time: logging out (or in as someone else)
-- empties every table except `settings`.

-- Small key/value pairs: server URL, last username, the logged-in user, app settings, limits.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- The rooms the user is a member of, as the server last described them, plus sync state.
CREATE TABLE rooms (
    id           INTEGER PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,      -- 'group' | 'direct'
    visibility   TEXT NOT NULL,      -- 'public' | 'private'
    member_count INTEGER NOT NULL,
    last_seq     INTEGER NOT NULL,
    role         TEXT,               -- 'owner' | 'member'
    read_seq     INTEGER NOT NULL DEFAULT 0,
    unread       INTEGER NOT NULL DEFAULT 0,
    peer         INTEGER,            -- direct rooms: the other user
    -- Last event of the room's stream applied here: the resume cursor. NULL until the socket
    -- has told us where the room stands (e.g. just joined over REST while offline).
    synced_seq    INTEGER,
    -- Every message with complete_from <= seq <= synced_seq is cached (0: the whole history).
    -- NULL: no such range yet. Lets a page be served from the cache without holes.
    complete_from INTEGER,
    -- Time of the newest event seen, for sorting the side bar.
    activity_ts  INTEGER NOT NULL DEFAULT 0
);

-- Users seen in rooms, with presence.
CREATE TABLE users (
    id        INTEGER PRIMARY KEY NOT NULL,
    username  TEXT NOT NULL,
    online    INTEGER NOT NULL DEFAULT 0,
    last_seen INTEGER
);

CREATE TABLE members (
    room  INTEGER NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user  INTEGER NOT NULL,
    owner INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room, user)
);

-- Messages accepted by the server. `id` is an explicit rowid so the FTS index (which refers to
-- rows by rowid) stays valid across VACUUM.
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    room        INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    client_id   TEXT NOT NULL,
    sender      INTEGER NOT NULL,
    sender_name TEXT NOT NULL,
    body        TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    edited      INTEGER NOT NULL DEFAULT 0,
    deleted     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (room, seq)
);
CREATE INDEX messages_client_id ON messages (client_id);

-- The user's read marker per room. `synced = 0` while the server has not been told yet
-- (moved while offline); pushed on the next connect.
CREATE TABLE read_markers (
    room   INTEGER PRIMARY KEY NOT NULL,
    seq    INTEGER NOT NULL,
    synced INTEGER NOT NULL DEFAULT 0
);

-- Messages written here and not yet accepted by the server. A row leaves when the server
-- acknowledges its client id (it then lives in `messages`) or when the user discards it.
CREATE TABLE outbox (
    client_id   TEXT PRIMARY KEY NOT NULL,
    room        INTEGER NOT NULL,
    body        TEXT NOT NULL,
    created     INTEGER NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'failed')),
    fail_code   TEXT,
    fail_reason TEXT
);
CREATE INDEX outbox_order ON outbox (created);

CREATE TABLE drafts (
    room    INTEGER PRIMARY KEY NOT NULL,
    text    TEXT NOT NULL,
    updated INTEGER NOT NULL
);

-- Full-text index over message bodies (external content: the text is stored once, in messages).
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    body,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;
