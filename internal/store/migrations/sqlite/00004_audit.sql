-- Kubernetes audit events as the API servers sent them (redacted), the
-- alerts detection rules raised over them, and the outbox of alert
-- deliveries to outputs (webhooks, Slack, syslog): an alert and its
-- deliveries are written in one transaction, so none is lost between
-- being raised and being sent.

-- +goose Up
CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    audit_id     TEXT    NOT NULL DEFAULT '',
    cluster      TEXT    NOT NULL DEFAULT '',
    at           INTEGER NOT NULL,
    verb         TEXT    NOT NULL DEFAULT '',
    username     TEXT    NOT NULL DEFAULT '',
    user_groups  TEXT    NOT NULL DEFAULT '[]',
    source_ip    TEXT    NOT NULL DEFAULT '',
    user_agent   TEXT    NOT NULL DEFAULT '',
    resource     TEXT    NOT NULL DEFAULT '',
    subresource  TEXT    NOT NULL DEFAULT '',
    namespace    TEXT    NOT NULL DEFAULT '',
    name         TEXT    NOT NULL DEFAULT '',
    api_group    TEXT    NOT NULL DEFAULT '',
    code         INTEGER NOT NULL DEFAULT 0,
    impersonated TEXT    NOT NULL DEFAULT '',
    event        TEXT    NOT NULL DEFAULT '{}'
);
-- An API server may send an event twice (a retried batch); its audit id
-- keeps the second copy out.
CREATE UNIQUE INDEX audit_events_audit_id ON audit_events (cluster, audit_id) WHERE audit_id <> '';
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_username ON audit_events (username, id);
CREATE INDEX audit_events_resource ON audit_events (resource, id);
CREATE INDEX audit_events_namespace ON audit_events (namespace, id);
CREATE INDEX audit_events_verb ON audit_events (verb, id);
CREATE INDEX audit_events_source_ip ON audit_events (source_ip);

-- An alert groups the events one rule matched for one actor and target
-- (group_key) from first_at on; later events update its count, last_at
-- and event list rather than raising another.
CREATE TABLE alerts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster        TEXT    NOT NULL DEFAULT '',
    rule_id        TEXT    NOT NULL,
    title          TEXT    NOT NULL DEFAULT '',
    severity       TEXT    NOT NULL DEFAULT '',
    severity_rank  INTEGER NOT NULL DEFAULT 0,
    technique_id   TEXT    NOT NULL DEFAULT '',
    technique_name TEXT    NOT NULL DEFAULT '',
    summary        TEXT    NOT NULL DEFAULT '',
    actor          TEXT    NOT NULL DEFAULT '',
    actor_groups   TEXT    NOT NULL DEFAULT '[]',
    source_ip      TEXT    NOT NULL DEFAULT '',
    user_agent     TEXT    NOT NULL DEFAULT '',
    verb           TEXT    NOT NULL DEFAULT '',
    resource       TEXT    NOT NULL DEFAULT '',
    subresource    TEXT    NOT NULL DEFAULT '',
    namespace      TEXT    NOT NULL DEFAULT '',
    name           TEXT    NOT NULL DEFAULT '',
    events         TEXT    NOT NULL DEFAULT '[]',
    event_count    INTEGER NOT NULL DEFAULT 0,
    group_key      TEXT    NOT NULL,
    first_at       INTEGER NOT NULL,
    last_at        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (cluster, group_key, first_at)
);
CREATE INDEX alerts_last_at ON alerts (last_at);
CREATE INDEX alerts_rule ON alerts (rule_id, id);
CREATE INDEX alerts_actor ON alerts (actor, id);
CREATE INDEX alerts_namespace ON alerts (namespace, id);

-- The outbox: one row per alert, output and change (new or update),
-- pending until the output took it. A claim moves next_at past the lease
-- so that one sender has it; a sender that dies leaves it due again.
CREATE TABLE alert_deliveries (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id   INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    output     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL,
    status     TEXT    NOT NULL DEFAULT 'pending',
    last_error TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    sent_at    INTEGER
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_at);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id);

-- +goose Down
DROP TABLE alert_deliveries;
DROP TABLE alerts;
DROP TABLE audit_events;
