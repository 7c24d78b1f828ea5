-- Kubernetes clusters: how to reach each, what runs in it (namespaces,
-- workloads and the images their containers run) and the posture findings
-- of its last evaluation. Scans learn which cluster asked for them and
-- which image pull secrets (by name only) may read the image.

-- +goose Up
CREATE TABLE clusters (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE,
    source          TEXT    NOT NULL,
    context         TEXT    NOT NULL DEFAULT '',
    server          TEXT    NOT NULL DEFAULT '',
    config          BLOB,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending',
    last_error      TEXT    NOT NULL DEFAULT '',
    synced_at       INTEGER,
    version         TEXT    NOT NULL DEFAULT '',
    namespace_count INTEGER NOT NULL DEFAULT 0,
    workload_count  INTEGER NOT NULL DEFAULT 0,
    pod_count       INTEGER NOT NULL DEFAULT 0,
    lease_owner     TEXT    NOT NULL DEFAULT '',
    lease_until     INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE cluster_namespaces (
    cluster_id INTEGER NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    labels     TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (cluster_id, name)
);

-- A workload is a controller (or a bare pod) with its pods as of the last
-- inventory; content_hash lets an unchanged one be left alone.
CREATE TABLE workloads (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id      INTEGER NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    namespace       TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    service_account TEXT    NOT NULL DEFAULT '',
    exposure        TEXT    NOT NULL DEFAULT '[]',
    host_network    INTEGER NOT NULL DEFAULT 0,
    host_pid        INTEGER NOT NULL DEFAULT 0,
    host_ipc        INTEGER NOT NULL DEFAULT 0,
    pods            TEXT    NOT NULL DEFAULT '[]',
    content_hash    TEXT    NOT NULL DEFAULT '',
    first_seen_at   INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    UNIQUE (cluster_id, namespace, kind, name)
);
CREATE INDEX workloads_namespace ON workloads (namespace, id);
CREATE INDEX workloads_name ON workloads (name, id);

-- The images a workload's containers run, once each over its pods: the
-- join from running workloads to images and their findings by digest.
CREATE TABLE workload_images (
    workload_id    INTEGER NOT NULL REFERENCES workloads (id) ON DELETE CASCADE,
    container      TEXT    NOT NULL,
    container_kind TEXT    NOT NULL,
    image          TEXT    NOT NULL,
    digest         TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (workload_id, container, container_kind, image, digest)
);
CREATE INDEX workload_images_digest ON workload_images (digest, workload_id);

CREATE TABLE posture_findings (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id         INTEGER NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    check_id           TEXT    NOT NULL,
    title              TEXT    NOT NULL DEFAULT '',
    severity           TEXT    NOT NULL,
    severity_rank      INTEGER NOT NULL,
    frameworks         TEXT    NOT NULL DEFAULT '[]',
    resource_kind      TEXT    NOT NULL,
    resource_namespace TEXT    NOT NULL DEFAULT '',
    resource_name      TEXT    NOT NULL,
    evidence           TEXT    NOT NULL DEFAULT '[]',
    first_seen_at      INTEGER NOT NULL,
    last_seen_at       INTEGER NOT NULL,
    resolved_at        INTEGER,
    UNIQUE (cluster_id, check_id, resource_kind, resource_namespace, resource_name)
);
CREATE INDEX posture_findings_check ON posture_findings (check_id, id);
CREATE INDEX posture_findings_namespace ON posture_findings (resource_namespace, id);
CREATE INDEX posture_findings_resource ON posture_findings (resource_kind, resource_name, id);
CREATE INDEX posture_findings_open_severity ON posture_findings (severity_rank, id) WHERE resolved_at IS NULL;
CREATE INDEX posture_findings_resolved_at ON posture_findings (resolved_at) WHERE resolved_at IS NOT NULL;

ALTER TABLE scans ADD COLUMN cluster_id INTEGER REFERENCES clusters (id) ON DELETE SET NULL;
ALTER TABLE scans ADD COLUMN pull_secrets TEXT NOT NULL DEFAULT '[]';
CREATE INDEX scans_cluster ON scans (cluster_id) WHERE cluster_id IS NOT NULL;

-- +goose Down
-- SQLite cannot drop a column that is a foreign key: scans is rebuilt as
-- 00001 made it.
CREATE TABLE scans_before_clusters (
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
INSERT INTO scans_before_clusters SELECT id, kind, reason, registry_id, reference, image_id, status, attempts, max_attempts, error, findings,
    queued_at, not_before, started_at, finished_at, lease_owner, lease_until FROM scans;
DROP TABLE scans;
ALTER TABLE scans_before_clusters RENAME TO scans;
CREATE UNIQUE INDEX scans_pending ON scans (kind, reference) WHERE status IN ('queued', 'running');
CREATE INDEX scans_queue ON scans (status, not_before, id);
CREATE INDEX scans_finished ON scans (finished_at) WHERE finished_at IS NOT NULL;
DROP TABLE posture_findings;
DROP TABLE workload_images;
DROP TABLE workloads;
DROP TABLE cluster_namespaces;
DROP TABLE clusters;
