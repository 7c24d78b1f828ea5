// Package vulndb is Bulwark's vulnerability database: it imports OSV
// records (https://ossf.github.io/osv-schema/) from the per-ecosystem
// exports, zips or JSON files, keeps them in an embedded, indexed bbolt
// file that is swapped in atomically, and matches installed packages
// against them with each ecosystem's own version rules (osv-scalibr's
// semantic package). Records that are aliases of one another become one
// finding per package. Severity comes from CVSS vectors, scored here, or
// from the record's own rating; an unknown severity stays unknown.
//
// It does not find packages (see extract) or download anything (see
// db update in cli).
package vulndb
