-- The TLS identity the cores sharing this database present to agents: the
-- CA their tokens pin, recorded by the first core to start (its key sealed
-- with the secret key every core is given), so a token is good for any core.
CREATE TABLE core_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    ca BYTEA NOT NULL,
    sealed_ca_key BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

-- The address an agent reached its core at (`HOST:PORT`, as the agent was
-- given it): which core it is on, for people.
ALTER TABLE agents ADD COLUMN core_address TEXT;
