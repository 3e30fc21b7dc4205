-- Resources are stored as JSON documents keyed by kind and id; the engine
-- keeps the working model in memory and this table makes it durable.
CREATE TABLE resources (
    kind      TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    body      TEXT    NOT NULL,
    revision  INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
);

-- One row per committed change: the change feed agents follow. The body is
-- read from `resources` (or absent, for a delete) when the feed is served.
CREATE TABLE changes (
    revision  INTEGER PRIMARY KEY,
    kind      TEXT    NOT NULL,
    id        TEXT    NOT NULL,
    deleted   INTEGER NOT NULL
);

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
