// Package update keeps the vulnerability database current. It refreshes it
// from OSV's per-ecosystem exports — incrementally, through each export's
// modified_id.csv, or in full from its all.zip when an ecosystem is new or
// too much has changed — and it moves whole databases between sites as OCI
// artifacts, for clusters that cannot reach OSV.
//
// It owns the HTTP fetching of exports, the sync state kept beside the
// database (sync.json) and the bundle format. It does not parse records or
// write the database: vulndb does, and every change lands in one vulndb
// Writer committed atomically, so a failed update leaves the old database.
package update
