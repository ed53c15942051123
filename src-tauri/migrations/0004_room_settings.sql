-- Room settings and profiles (issue 13): a room's topic and the user's notification level for
-- it ('all' | 'mentions' | 'none', synced from the server), a direct room's peer's display
-- name, and other users' display names.
ALTER TABLE rooms ADD COLUMN topic TEXT NOT NULL DEFAULT '';
ALTER TABLE rooms ADD COLUMN notify TEXT NOT NULL DEFAULT 'all';
ALTER TABLE rooms ADD COLUMN peer_display_name TEXT;
ALTER TABLE users ADD COLUMN display_name TEXT;
