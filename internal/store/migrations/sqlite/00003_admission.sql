-- Admission decisions: every review the validating webhook answered, with
-- the rules that fired, so a block or a break-glass can be explained later.

-- +goose Up
CREATE TABLE admission_decisions (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    at                 INTEGER NOT NULL,
    cluster            TEXT    NOT NULL DEFAULT '',
    uid                TEXT    NOT NULL DEFAULT '',
    operation          TEXT    NOT NULL DEFAULT '',
    kind               TEXT    NOT NULL DEFAULT '',
    namespace          TEXT    NOT NULL DEFAULT '',
    name               TEXT    NOT NULL DEFAULT '',
    username           TEXT    NOT NULL DEFAULT '',
    allowed            INTEGER NOT NULL,
    action             TEXT    NOT NULL,
    rules              TEXT    NOT NULL DEFAULT '[]',
    message            TEXT    NOT NULL DEFAULT '',
    warnings           TEXT    NOT NULL DEFAULT '[]',
    dry_run            INTEGER NOT NULL DEFAULT 0,
    break_glass        INTEGER NOT NULL DEFAULT 0,
    break_glass_reason TEXT    NOT NULL DEFAULT '',
    images             TEXT    NOT NULL DEFAULT '[]',
    duration_us        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX admission_decisions_at ON admission_decisions (at);
CREATE INDEX admission_decisions_namespace ON admission_decisions (namespace, id);
CREATE INDEX admission_decisions_action ON admission_decisions (action, id);

-- +goose Down
DROP TABLE admission_decisions;
