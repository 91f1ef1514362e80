// The embedded backend's SQLite schema. Rows are owned by exactly one object
// (its shard is their only writer). The reverse list is stored by the user it
// belongs to, as the contacts' objects told it (reverse_contacts); the
// contacts' objects keep what they told until it is acknowledged (outbox),
// so the two sides agree again after a crash between their commits
// (gateway/backends/README.md, "Reverse-list exchange"). What contacts
// showed a user of their presence and phones is the user's own too
// (contact_views, contact_phones), and what present users block is the
// room's, as their objects told it (room_blocks).
#include "gateway/backends/embedded/object.hpp"

#include <stdexcept>

namespace switchyard::gateway::embedded {

namespace {

constexpr int schema_version = 7;

constexpr const char* schema = R"sql(
CREATE TABLE users (
    handle           TEXT PRIMARY KEY,
    display_name     TEXT NOT NULL,
    personal_message TEXT NOT NULL DEFAULT '',
    current_media    TEXT NOT NULL DEFAULT '',
    privacy          INTEGER NOT NULL DEFAULT 0,  -- frame::privacy_default
    privacy_set      INTEGER NOT NULL DEFAULT 0,  -- stored explicitly (MSNP 218 rule)
    prompt           INTEGER NOT NULL DEFAULT 0,  -- frame::add_prompt
    prompt_set       INTEGER NOT NULL DEFAULT 0,
    list_version     INTEGER NOT NULL DEFAULT 0,
    created_ms       INTEGER NOT NULL,
    phone_home       TEXT NOT NULL DEFAULT '',     -- added by schema version 2
    phone_work       TEXT NOT NULL DEFAULT '',
    phone_mobile     TEXT NOT NULL DEFAULT '',
    mobile_pageable  INTEGER NOT NULL DEFAULT 0,   -- contacts may page the mobile device (MSNP MOB)
    mobile_device    INTEGER NOT NULL DEFAULT 0    -- a mobile device is set up (MSNP MBE)
) WITHOUT ROWID;

CREATE TABLE credentials (
    handle     TEXT PRIMARY KEY REFERENCES users(handle) ON DELETE CASCADE,
    kdf        TEXT NOT NULL,   -- "scrypt$N$r$p"
    salt       BLOB NOT NULL,
    hash       BLOB NOT NULL,
    md5_salt   TEXT,            -- MSNP2-7 login, only when enabled for the user
    md5_hash   TEXT,
    changed_ms INTEGER NOT NULL DEFAULT 0  -- set with the password (Unix ms): older tickets are refused; added by schema version 7
) WITHOUT ROWID;

-- The owner's forward, allow and block lists (frame list bits 1, 2, 4).
CREATE TABLE contacts (
    owner        TEXT NOT NULL REFERENCES users(handle) ON DELETE CASCADE,
    contact      TEXT NOT NULL,
    lists        INTEGER NOT NULL,
    display_name TEXT NOT NULL,
    contact_id   TEXT NOT NULL,
    PRIMARY KEY (owner, contact)
) WITHOUT ROWID;
CREATE INDEX contacts_by_contact ON contacts (contact, owner);

-- created_version: the owner's list version when the group was made. It
-- orders groups by creation (ids are UUIDs, so the key does not) and seeds
-- the group's id.
CREATE TABLE groups (
    owner           TEXT NOT NULL REFERENCES users(handle) ON DELETE CASCADE,
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    created_version INTEGER NOT NULL,
    PRIMARY KEY (owner, id)
) WITHOUT ROWID;

CREATE TABLE contact_groups (
    owner    TEXT NOT NULL,
    contact  TEXT NOT NULL,
    group_id TEXT NOT NULL,
    PRIMARY KEY (owner, contact, group_id),
    FOREIGN KEY (owner, contact) REFERENCES contacts(owner, contact) ON DELETE CASCADE
) WITHOUT ROWID;

-- Live endpoints; emptied at start, since every endpoint of this process is gone.
CREATE TABLE presence (
    handle          TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    state           INTEGER NOT NULL,
    capabilities    INTEGER NOT NULL,
    capabilities_ex INTEGER NOT NULL,
    msn_object      TEXT NOT NULL,
    single_session  INTEGER NOT NULL DEFAULT 0,  -- the client allows one session per account; added by schema version 3
    PRIMARY KEY (handle, endpoint)
) WITHOUT ROWID;

-- epoch: names this incarnation of the room's history (frame room_members);
-- chosen when the room is created, and by the room's first load when empty
-- (rooms of schema version 2 and earlier).
CREATE TABLE rooms (
    id         TEXT PRIMARY KEY,
    policy     INTEGER NOT NULL,  -- frame::room_policy
    title      TEXT NOT NULL,
    creator    TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    epoch      TEXT NOT NULL DEFAULT ''   -- added by schema version 3
) WITHOUT ROWID;

-- Who may take part (direct and named rooms keep members between visits).
CREATE TABLE room_members (
    room TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user TEXT NOT NULL,
    PRIMARY KEY (room, user)
) WITHOUT ROWID;

CREATE TABLE room_invites (
    room TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user TEXT NOT NULL,
    PRIMARY KEY (room, user)
) WITHOUT ROWID;

-- Joined endpoints; emptied at start like presence. grace_until_ms is 0
-- for a connected endpoint; for one whose connection dropped, when its
-- place in the room runs out (the backend's rejoin_grace).
CREATE TABLE room_endpoints (
    room            TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    user            TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    capabilities    INTEGER NOT NULL,
    protocol        INTEGER NOT NULL,
    grace_until_ms  INTEGER NOT NULL DEFAULT 0,  -- added by schema version 3
    PRIMARY KEY (room, user, endpoint)
) WITHOUT ROWID;

-- The last 100 messages of each room in a ring: slot = seq % 100, so the
-- table never grows past 100 rows per room and needs no trimming. The
-- room's last seq is the highest seq in its ring. withheld: the handles the
-- message was withheld from when sent (frame withheld_from), one per line.
CREATE TABLE messages (
    room       TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    slot       INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    sender     TEXT NOT NULL,
    message_id TEXT NOT NULL,
    ts_ms      INTEGER NOT NULL,
    text       TEXT NOT NULL,
    font       TEXT NOT NULL,
    effects    TEXT NOT NULL,
    color      INTEGER NOT NULL,
    charset    INTEGER NOT NULL,
    pitch      INTEGER NOT NULL,
    rtl        INTEGER NOT NULL,
    withheld   TEXT NOT NULL DEFAULT '',  -- added by schema version 3
    PRIMARY KEY (room, slot)
) WITHOUT ROWID;
)sql";

// Version 1 databases lack the phone columns; adding them keeps every row.
// The tables schema version 4 added: in a new database and in the upgrade
// from version 3 alike.
constexpr const char* tables_added_in_v4 = R"sql(
-- The owner's reverse list: `contact` has (listed = 1) or had (listed = 0)
-- the owner on its forward list, as the contact's object said in its notice
-- of the contact's list version `version`. Kept after a removal so a notice
-- older than the last one applied is known as such. display_name: the
-- contact's name when it sent the notice. Added by schema version 4.
CREATE TABLE reverse_contacts (
    owner        TEXT NOT NULL REFERENCES users(handle) ON DELETE CASCADE,
    contact      TEXT NOT NULL,
    listed       INTEGER NOT NULL,
    display_name TEXT NOT NULL,
    version      INTEGER NOT NULL,
    PRIMARY KEY (owner, contact)
) WITHOUT ROWID;

-- The owner's reverse-list notices to `contact` that the contact's object
-- has not acknowledged: the latest per contact (op: frame::change_op add or
-- remove; version: the owner's list version it was made at). Sent again
-- when the backend starts. Added by schema version 4.
CREATE TABLE outbox (
    owner        TEXT NOT NULL REFERENCES users(handle) ON DELETE CASCADE,
    contact      TEXT NOT NULL,
    op           INTEGER NOT NULL,
    display_name TEXT NOT NULL,
    version      INTEGER NOT NULL,
    PRIMARY KEY (owner, contact)
) WITHOUT ROWID;

-- What each forward-list contact last showed the owner while online: the
-- view its object sent (presence_update), or the one read when the owner
-- added it. No row: offline. Emptied at start like presence, since every
-- endpoint is gone. Added by schema version 4.
CREATE TABLE contact_views (
    owner            TEXT NOT NULL REFERENCES users(handle) ON DELETE CASCADE,
    contact          TEXT NOT NULL,
    state            INTEGER NOT NULL,
    display_name     TEXT NOT NULL,
    personal_message TEXT NOT NULL,
    current_media    TEXT NOT NULL,
    capabilities     INTEGER NOT NULL,
    capabilities_ex  INTEGER NOT NULL,
    msn_object       TEXT NOT NULL,
    endpoint         TEXT NOT NULL,
    phone_home       TEXT NOT NULL,
    phone_work       TEXT NOT NULL,
    phone_mobile     TEXT NOT NULL,
    mobile_pageable  INTEGER NOT NULL,
    PRIMARY KEY (owner, contact)
) WITHOUT ROWID;
)sql";

// The tables schema version 5 added: in a new database and in the upgrades.
constexpr const char* tables_added_in_v5 = R"sql(
-- The phones each forward-list contact shows the owner, as the contact's
-- object last said (when the owner added it, and whenever its phones or
-- its privacy towards the owner change). No row: none. Added by schema
-- version 5.
CREATE TABLE IF NOT EXISTS contact_phones (
    owner            TEXT NOT NULL REFERENCES users(handle) ON DELETE CASCADE,
    contact          TEXT NOT NULL,
    phone_home       TEXT NOT NULL,
    phone_work       TEXT NOT NULL,
    phone_mobile     TEXT NOT NULL,
    mobile_pageable  INTEGER NOT NULL,
    PRIMARY KEY (owner, contact)
) WITHOUT ROWID;

-- What each user present in a room blocks, as its user object told the
-- room (when the user joined, and at each change of its block list since):
-- the room withholds what a blocked user sends from the blocker. Emptied
-- at start with the endpoints. Added by schema version 5.
CREATE TABLE IF NOT EXISTS room_blocks (
    room     TEXT NOT NULL,
    user     TEXT NOT NULL,
    blocked  TEXT NOT NULL,
    PRIMARY KEY (room, user, blocked)
) WITHOUT ROWID;

-- The rooms where the owner is present, which are told when its block
-- list changes. Emptied at start with the endpoints. Added by schema
-- version 5.
CREATE TABLE IF NOT EXISTS user_rooms (
    owner  TEXT NOT NULL REFERENCES users(handle) ON DELETE CASCADE,
    room   TEXT NOT NULL,
    PRIMARY KEY (owner, room)
) WITHOUT ROWID;
)sql";

// The table schema version 6 added: in a new database and in the upgrades.
constexpr const char* tables_added_in_v6 = R"sql(
-- A removed account's word to its contacts (those on its forward list and
-- those with it on theirs) that it is gone, kept past its other rows until
-- each contact's object acknowledges it: each drops what it holds of the
-- account (gateway/backends/README.md, "Accounts"). Added by schema
-- version 6.
CREATE TABLE IF NOT EXISTS departures (
    owner    TEXT NOT NULL,
    contact  TEXT NOT NULL,
    PRIMARY KEY (owner, contact)
) WITHOUT ROWID;
)sql";

// Version 4 databases had user objects read their contacts' phones from
// the contacts' rows: each user gets, once, what those rows show it now.
constexpr const char* upgrade_v4_to_v5 = R"sql(
INSERT OR IGNORE INTO contact_phones (owner, contact, phone_home, phone_work, phone_mobile, mobile_pageable)
    SELECT mine.owner, u.handle, u.phone_home, u.phone_work, u.phone_mobile, u.mobile_pageable
    FROM contacts AS mine JOIN users AS u ON u.handle = mine.contact
    LEFT JOIN contacts AS theirs ON theirs.owner = mine.contact AND theirs.contact = mine.owner
    WHERE (mine.lists & 1) != 0
      AND (u.phone_home != '' OR u.phone_work != '' OR u.phone_mobile != '' OR u.mobile_pageable != 0)
      AND (IFNULL(theirs.lists, 0) & 4) = 0
      AND ((IFNULL(theirs.lists, 0) & 2) != 0 OR u.privacy = 0);
)sql";

constexpr const char* upgrade_v1_to_v2 = R"sql(
ALTER TABLE users ADD COLUMN phone_home TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN phone_work TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN phone_mobile TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN mobile_pageable INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN mobile_device INTEGER NOT NULL DEFAULT 0;
)sql";

// Version 2 databases lack room epochs, grace periods, withheld lists and
// single-session endpoints. Rooms get an epoch when they are next loaded; no
// endpoint is in a grace period; stored messages were withheld from no one
// (the blocks of their readers still apply when history is read).
constexpr const char* upgrade_v2_to_v3 = R"sql(
ALTER TABLE rooms ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
ALTER TABLE room_endpoints ADD COLUMN grace_until_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN withheld TEXT NOT NULL DEFAULT '';
ALTER TABLE presence ADD COLUMN single_session INTEGER NOT NULL DEFAULT 0;
)sql";

// Version 3 databases derived reverse lists from the other users' forward
// lists. Each user gets the entries those lists imply, once, as if every
// contact's object had just sent its notice at its current list version, so
// the next notice of each is newer. Contact views start empty, as they do
// at every start.
constexpr const char* upgrade_v3_to_v4 = R"sql(
INSERT INTO reverse_contacts (owner, contact, listed, display_name, version)
    SELECT c.contact, c.owner, 1, u.display_name, u.list_version
    FROM contacts AS c JOIN users AS u ON u.handle = c.owner
    WHERE (c.lists & 1) != 0 AND EXISTS (SELECT 1 FROM users WHERE handle = c.contact);
)sql";

// Version 6 databases did not record when a password was set: their
// accounts accept every unexpired ticket until the next password change.
constexpr const char* upgrade_v6_to_v7 = R"sql(
ALTER TABLE credentials ADD COLUMN changed_ms INTEGER NOT NULL DEFAULT 0;
)sql";

}  // namespace

void create_schema(database& db) {
    // The version is read inside the write transaction, so two processes
    // opening one new file cannot both create or upgrade it.
    db.exec("BEGIN IMMEDIATE");
    auto& version = db.prepare("PRAGMA user_version");
    version.bind();
    const std::int64_t v = version.step() ? version.integer(0) : 0;
    version.run();
    if (v < 0 || v > schema_version) {
        db.exec("ROLLBACK");
        throw std::runtime_error("database schema version " + std::to_string(v) + " is not " +
                                 std::to_string(schema_version) + ", the version this build reads");
    }
    if (v == 0) {
        db.exec(schema);
        db.exec(tables_added_in_v4);
    }
    if (v == 1) {
        db.exec(upgrade_v1_to_v2);
    }
    if (v == 1 || v == 2) {
        db.exec(upgrade_v2_to_v3);
    }
    if (v >= 1 && v <= 3) {
        db.exec(tables_added_in_v4);
        db.exec(upgrade_v3_to_v4);
    }
    if (v == 0 || v <= 4) {
        db.exec(tables_added_in_v5);
    }
    if (v >= 1 && v <= 4) {
        db.exec(upgrade_v4_to_v5);
    }
    if (v <= 5) {
        db.exec(tables_added_in_v6);
    }
    if (v >= 1 && v <= 6) {
        // Only where the column is missing: SQLite has no ADD COLUMN IF NOT EXISTS.
        auto& has = db.prepare("SELECT count(*) FROM pragma_table_info('credentials') WHERE name = 'changed_ms'");
        has.bind();
        const bool present = has.step() && has.integer(0) > 0;
        has.run();
        if (!present) db.exec(upgrade_v6_to_v7);
    }
    if (v != schema_version) {
        db.exec("PRAGMA user_version = " + std::to_string(schema_version));
    }
    db.exec("COMMIT");
}

void clear_endpoints(database& db, bool end_switchboards) {
    // Switchboard sessions nobody can come back to: an MSNP switchboard
    // connection cannot be resumed, so an invite-only room in which no
    // WebSocket client (which resumes by room id) had joined ended with the
    // process; a crash leaves its rows behind. One that holds messages is
    // kept: they were acknowledged, and stay readable (`switchyard room
    // history`).
    if (end_switchboards) db.exec("DELETE FROM rooms WHERE policy = " + std::to_string(static_cast<int>(frame::room_policy::invite_only)) +
            " AND id NOT IN (SELECT room FROM room_endpoints WHERE protocol = " +
            std::to_string(static_cast<int>(frame::client_protocol::wsjson)) +
            ") AND NOT EXISTS (SELECT 1 FROM messages WHERE messages.room = rooms.id)");
    db.exec("DELETE FROM presence");
    db.exec("DELETE FROM contact_views");
    db.exec("DELETE FROM room_endpoints");
    db.exec("DELETE FROM room_blocks");
    db.exec("DELETE FROM user_rooms");
}

}  // namespace switchyard::gateway::embedded
