-- Custom user attributes: the organisation's definitions and users' values.
--
-- A plain value is kept in value_text, in the canonical text of its type
-- (see identity.h). An encrypted value is kept only as value_ct, the
-- AES-256-GCM ciphertext from src/kms bound to (org, 'user_attributes',
-- attribute name, user id), with the data-key version that made it and a
-- keyed blind index (hex HMAC-SHA256 of the canonical text) for equality
-- search. unique_key is filled only for attributes defined unique (the
-- value text, or the blind index when encrypted); NULLs never collide, so
-- the UNIQUE constraint binds exactly the unique attributes.
--
-- BYTEA is PostgreSQL's binary type; SQLite stores a bound blob unchanged
-- under any declared type. Booleans are 0/1 integers in both databases.
CREATE TABLE attribute_definitions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL CHECK (type IN ('string', 'number', 'date', 'boolean', 'enum')),
    enum_values TEXT,
    required INTEGER NOT NULL CHECK (required IN (0, 1)),
    is_unique INTEGER NOT NULL CHECK (is_unique IN (0, 1)),
    classification TEXT NOT NULL CHECK (classification IN ('public', 'internal', 'personal', 'sensitive')),
    encrypted INTEGER NOT NULL CHECK (encrypted IN (0, 1)),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CHECK ((type = 'enum') = (enum_values IS NOT NULL))
);

CREATE TABLE user_attributes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    attribute_id TEXT NOT NULL REFERENCES attribute_definitions (id) ON DELETE CASCADE,
    value_text TEXT,
    value_ct BYTEA,
    key_version BIGINT,
    blind_index TEXT,
    unique_key TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, attribute_id),
    CHECK ((value_text IS NULL) <> (value_ct IS NULL)),
    CHECK ((value_ct IS NULL) = (key_version IS NULL)),
    CHECK ((value_ct IS NULL) = (blind_index IS NULL)),
    UNIQUE (attribute_id, unique_key)
);
CREATE INDEX user_attributes_text ON user_attributes (attribute_id, value_text);
CREATE INDEX user_attributes_blind ON user_attributes (attribute_id, blind_index);
