-- Outbox hints: "this organisation may have pending rows in its outbox of
-- this kind" ('mail': notifications to mail; 'bcl': back-channel logouts).
-- Written (gh_db_outbox_hint) before the tenant transaction that queues a
-- row commits, by whichever process queues it (the server, the CLI), so
-- that the senders find the organisations with work by reading this table
-- instead of opening every tenant database. A hint with nothing behind it
-- is harmless; the sender clears it (pending = 0) once the outbox is empty.
-- seq grows with every write (rows are never deleted, so its maximum never
-- goes back): a sender reads the hints written since it last looked.
CREATE TABLE outbox_hints (
    org_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    pending INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (org_id, kind)
);

CREATE INDEX outbox_hints_by_seq ON outbox_hints (kind, seq);
