-- Messages a worker could not apply because of their content (not because a dependency was
-- away). The message itself stays in Kafka at this position; only where it is and why it
-- failed is kept here, so no personal data is copied.
CREATE TABLE dead_letters (
    worker      text        NOT NULL,
    topic       text        NOT NULL,
    "partition" integer     NOT NULL,
    "offset"    bigint      NOT NULL,
    key         text,
    error       text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (worker, topic, "partition", "offset")
);
