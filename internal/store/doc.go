// Package store keeps the server's state in SQL: registries and their
// repositories, images by digest with the references they were seen
// under, each image's packages (its SBOM, so a database update re-matches
// without pulling again), findings with their first-seen and fixed-at
// history, the scan queue, API tokens and the audit log of user actions.
//
// One implementation serves two databases: embedded SQLite
// (modernc.org/sqlite, WAL, a single file — the default) and PostgreSQL
// (pgx, for several server replicas). The SQL is written once; a dialect
// says how placeholders are spelled and how the queue is claimed. Each
// dialect has its own goose migrations, embedded in the binary and run by
// Open. Consumers define the interfaces they need over *DB.
//
// The package does not know what is secret: registry credentials arrive
// here already sealed (see internal/secretbox) and API tokens as hashes.
package store
