-- The first schema: registries and what was found in them, the scan queue,
-- API tokens and the audit log of user actions. Times are Unix
-- milliseconds (UTC) in both dialects, so comparisons and cursors read the
-- same everywhere. Later issues add clusters, workloads, events and alerts
-- as new numbered files.

-- +goose Up
CREATE TABLE registries (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT    NOT NULL UNIQUE,
    type           TEXT    NOT NULL,
    url            TEXT    NOT NULL,
    settings       TEXT    NOT NULL DEFAULT '{}',
    credentials    BLOB,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    next_poll_at   INTEGER NOT NULL DEFAULT 0,
    last_polled_at INTEGER,
    last_error     TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE repositories (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    registry_id   INTEGER NOT NULL REFERENCES registries (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    UNIQUE (registry_id, name)
);

CREATE TABLE images (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    digest         TEXT    NOT NULL UNIQUE,
    platform       TEXT    NOT NULL DEFAULT '',
    os             TEXT    NOT NULL DEFAULT '',
    first_seen_at  INTEGER NOT NULL,
    last_seen_at   INTEGER NOT NULL,
    scanned_at     INTEGER,
    matched_at     INTEGER,
    db_built_at    INTEGER,
    sbom           BLOB,
    package_count  INTEGER NOT NULL DEFAULT 0,
    critical       INTEGER NOT NULL DEFAULT 0,
    high           INTEGER NOT NULL DEFAULT 0,
    medium         INTEGER NOT NULL DEFAULT 0,
    low            INTEGER NOT NULL DEFAULT 0,
    unknown        INTEGER NOT NULL DEFAULT 0,
    fixable        INTEGER NOT NULL DEFAULT 0,
    warnings       TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX images_last_seen ON images (last_seen_at);

CREATE TABLE image_refs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id      INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    registry_id   INTEGER REFERENCES registries (id) ON DELETE SET NULL,
    host          TEXT    NOT NULL,
    repository    TEXT    NOT NULL,
    tag           TEXT    NOT NULL DEFAULT '',
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    UNIQUE (host, repository, tag, image_id)
);
CREATE INDEX image_refs_image ON image_refs (image_id);
CREATE INDEX image_refs_registry ON image_refs (registry_id, image_id);
CREATE INDEX image_refs_repository ON image_refs (repository, image_id);

CREATE TABLE findings (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id        INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    vuln_id         TEXT    NOT NULL,
    aliases         TEXT    NOT NULL DEFAULT '[]',
    package_name    TEXT    NOT NULL,
    package_version TEXT    NOT NULL,
    ecosystem       TEXT    NOT NULL DEFAULT '',
    purl            TEXT    NOT NULL DEFAULT '',
    path            TEXT    NOT NULL DEFAULT '',
    fixed_version   TEXT    NOT NULL DEFAULT '',
    fixable         INTEGER NOT NULL DEFAULT 0,
    severity        TEXT    NOT NULL,
    severity_rank   INTEGER NOT NULL,
    cvss            REAL    NOT NULL DEFAULT 0,
    summary         TEXT    NOT NULL DEFAULT '',
    first_seen_at   INTEGER NOT NULL,
    fixed_at        INTEGER,
    UNIQUE (image_id, vuln_id, package_name, package_version, path)
);
CREATE INDEX findings_open_severity ON findings (severity_rank, id) WHERE fixed_at IS NULL;
CREATE INDEX findings_open_first_seen ON findings (first_seen_at, id) WHERE fixed_at IS NULL;
CREATE INDEX findings_package ON findings (package_name, id);
CREATE INDEX findings_vuln ON findings (vuln_id, id);
CREATE INDEX findings_fixed_at ON findings (fixed_at) WHERE fixed_at IS NOT NULL;

-- The other ids of each finding's flaw, so a search by any id is an index
-- lookup.
CREATE TABLE finding_aliases (
    alias      TEXT    NOT NULL,
    finding_id INTEGER NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
    PRIMARY KEY (alias, finding_id)
);
CREATE INDEX finding_aliases_finding ON finding_aliases (finding_id);

CREATE TABLE scans (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    registry_id  INTEGER REFERENCES registries (id) ON DELETE SET NULL,
    reference    TEXT    NOT NULL,
    image_id     INTEGER REFERENCES images (id) ON DELETE SET NULL,
    status       TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    error        TEXT    NOT NULL DEFAULT '',
    findings     INTEGER NOT NULL DEFAULT 0,
    queued_at    INTEGER NOT NULL,
    not_before   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    lease_owner  TEXT    NOT NULL DEFAULT '',
    lease_until  INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX scans_pending ON scans (kind, reference) WHERE status IN ('queued', 'running');
CREATE INDEX scans_queue ON scans (status, not_before, id);
CREATE INDEX scans_finished ON scans (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL UNIQUE,
    role         TEXT    NOT NULL,
    hash         TEXT    NOT NULL UNIQUE,
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL DEFAULT '',
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,
    role        TEXT    NOT NULL DEFAULT '',
    action      TEXT    NOT NULL,
    method      TEXT    NOT NULL DEFAULT '',
    path        TEXT    NOT NULL DEFAULT '',
    target      TEXT    NOT NULL DEFAULT '',
    status      INTEGER NOT NULL DEFAULT 0,
    remote_addr TEXT    NOT NULL DEFAULT '',
    detail      TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at, id);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
DROP TABLE settings;
DROP TABLE audit_log;
DROP TABLE api_tokens;
DROP TABLE scans;
DROP TABLE finding_aliases;
DROP TABLE findings;
DROP TABLE image_refs;
DROP TABLE images;
DROP TABLE repositories;
DROP TABLE registries;
