-- Node sensors: their identities (a credential issued at enrolment,
-- stored as a hash), the batches they sent (so a batch sent again after a
-- lost answer is stored once), the events of those batches for hunting,
-- and the columns that tell a runtime alert from a control-plane one.

-- +goose Up
-- One row per (cluster, node): enrolling again replaces the credential
-- and keeps the counters. A revoked sensor keeps its row for the record.
CREATE TABLE sensors (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster      TEXT    NOT NULL,
    node         TEXT    NOT NULL,
    version      TEXT    NOT NULL DEFAULT '',
    hash         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL DEFAULT '',
    enrolled_at  INTEGER NOT NULL,
    enrolled_by  TEXT    NOT NULL DEFAULT '',
    last_seen_at INTEGER,
    events       INTEGER NOT NULL DEFAULT 0,
    dropped      INTEGER NOT NULL DEFAULT 0,
    rejected     INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER,
    UNIQUE (cluster, node)
);
CREATE UNIQUE INDEX sensors_hash ON sensors (hash);

-- The batch ids a sensor's batches were stored under, kept as long as
-- their events.
CREATE TABLE sensor_batches (
    sensor_id   INTEGER NOT NULL REFERENCES sensors (id) ON DELETE CASCADE,
    batch_id    TEXT    NOT NULL,
    events      INTEGER NOT NULL DEFAULT 0,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (sensor_id, batch_id)
);
CREATE INDEX sensor_batches_received_at ON sensor_batches (received_at);

-- An event is known to alerts as "<batch_id>/<event_index>".
CREATE TABLE sensor_events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster        TEXT    NOT NULL DEFAULT '',
    node           TEXT    NOT NULL DEFAULT '',
    batch_id       TEXT    NOT NULL,
    event_index    INTEGER NOT NULL,
    at             INTEGER NOT NULL,
    kind           TEXT    NOT NULL,
    pid            INTEGER NOT NULL DEFAULT 0,
    uid            INTEGER NOT NULL DEFAULT 0,
    exe            TEXT    NOT NULL DEFAULT '',
    args           TEXT    NOT NULL DEFAULT '[]',
    container_id   TEXT    NOT NULL DEFAULT '',
    container_name TEXT    NOT NULL DEFAULT '',
    pod            TEXT    NOT NULL DEFAULT '',
    namespace      TEXT    NOT NULL DEFAULT '',
    image          TEXT    NOT NULL DEFAULT '',
    digest         TEXT    NOT NULL DEFAULT '',
    dns_name       TEXT    NOT NULL DEFAULT '',
    remote         TEXT    NOT NULL DEFAULT '',
    drift          INTEGER NOT NULL DEFAULT 0,
    event          TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX sensor_events_at ON sensor_events (at);
CREATE INDEX sensor_events_node ON sensor_events (node, id);
CREATE INDEX sensor_events_namespace ON sensor_events (namespace, id);
CREATE INDEX sensor_events_container ON sensor_events (container_id, id);
CREATE INDEX sensor_events_exe ON sensor_events (exe, id);
CREATE INDEX sensor_events_batch ON sensor_events (batch_id, event_index);

ALTER TABLE alerts ADD COLUMN source TEXT NOT NULL DEFAULT 'audit';
ALTER TABLE alerts ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN container_id TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN container_name TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN image TEXT NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN process TEXT NOT NULL DEFAULT '';
CREATE INDEX alerts_source ON alerts (source, id);
CREATE INDEX alerts_node ON alerts (node, id);

-- +goose Down
DROP INDEX alerts_node;
DROP INDEX alerts_source;
ALTER TABLE alerts DROP COLUMN process;
ALTER TABLE alerts DROP COLUMN image;
ALTER TABLE alerts DROP COLUMN container_name;
ALTER TABLE alerts DROP COLUMN container_id;
ALTER TABLE alerts DROP COLUMN node;
ALTER TABLE alerts DROP COLUMN source;
DROP TABLE sensor_events;
DROP TABLE sensor_batches;
DROP TABLE sensors;
