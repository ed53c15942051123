-- Replies, reactions and mentions (protocol §1.7–1.9).
-- Messages keep what they answer (`reply_to`), whom they mention (`mentions`: a JSON array of
-- user ids; `mention_room`: @room) and their current reactions (`reactions`: a JSON array of
-- {emoji, users} in the server's order, changed by reaction events as set operations).
-- Rows cached before this know none of it until written again.
ALTER TABLE messages ADD COLUMN reply_to INTEGER;
ALTER TABLE messages ADD COLUMN mentions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE messages ADD COLUMN mention_room INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN reactions TEXT NOT NULL DEFAULT '[]';

-- Unread messages that mention the user (shown apart from `unread`), as the server counts them.
ALTER TABLE rooms ADD COLUMN mentions INTEGER NOT NULL DEFAULT 0;

-- A message in the outbox keeps its reply and mentions until it is sent.
ALTER TABLE outbox ADD COLUMN reply_to INTEGER;
ALTER TABLE outbox ADD COLUMN mentions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE outbox ADD COLUMN mention_room INTEGER NOT NULL DEFAULT 0;

-- Reactions the user added or took back that the server has not confirmed (`ok` for `op`).
-- One row per (message, emoji): the latest intent replaces an older one (reactions are set
-- operations, so only the last one matters and sending it twice changes nothing).
CREATE TABLE reaction_outbox (
    room    INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    emoji   TEXT NOT NULL,
    remove  INTEGER NOT NULL,
    -- The `ref` of the `react` frame; a new intent gets a new one.
    op      TEXT NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (room, seq, emoji)
);
