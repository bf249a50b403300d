-- The generation of the orgs table: bumped in the same transaction as
-- every change of an organisation (src/identity/org.c), so that a server
-- caching organisations sees a change made by any process (the CLI) on its
-- very next request (gh_store_org_gen).
CREATE TABLE org_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    gen BIGINT NOT NULL
);

INSERT INTO org_generation (id, gen) VALUES (1, 1);
