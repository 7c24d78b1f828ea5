package model

import "time"

// ReportSchemaVersion is the version of the JSON report schema; it changes
// only when a field changes meaning or goes away.
const ReportSchemaVersion = 1

// Report is the result of scanning one target: what was found in it and
// which vulnerabilities affect it. Every output format is written from it.
type Report struct {
	SchemaVersion int       `json:"schemaVersion"`
	CreatedAt     time.Time `json:"createdAt"`
	Target        Target    `json:"target"`
	// OS is the operating system of the target's root, when one was found.
	OS       *OS       `json:"os,omitempty"`
	Packages []Package `json:"packages"`
	Findings []Finding `json:"findings"`
	// Suppressed are findings an ignore file or a VEX statement removed,
	// each with the reason.
	Suppressed []Suppressed `json:"suppressed,omitempty"`
	// Unmatched are packages that could not be checked, with the reason.
	Unmatched []Unmatched `json:"unmatched,omitempty"`
	// Warnings are problems the scan worked around: unreadable files,
	// hostile tar entries skipped, malformed package data.
	Warnings []string `json:"warnings,omitempty"`
	Database Database `json:"database"`
}

// Target kinds.
const (
	TargetImage   = "image"
	TargetArchive = "archive"
	TargetFS      = "fs"
)

// Target says what was scanned.
type Target struct {
	Kind string `json:"kind"`
	// Name is the reference, file or directory as the user gave it.
	Name string `json:"name"`
	// Digest is the image's manifest digest, for images.
	Digest string `json:"digest,omitempty"`
	// Platform is the image's os/architecture[/variant].
	Platform string `json:"platform,omitempty"`
	// Layers are the image's layer digests, bottom first.
	Layers []string `json:"layers,omitempty"`
}

// OS is the operating system found in a target.
type OS struct {
	ID         string `json:"id"`
	VersionID  string `json:"versionID,omitempty"`
	PrettyName string `json:"prettyName,omitempty"`
	// Ecosystem is the OSV ecosystem of its packages ("Debian:12").
	Ecosystem string `json:"ecosystem,omitempty"`
}

// Suppressed is a finding left out of a report, and why.
type Suppressed struct {
	Finding Finding `json:"finding"`
	// Source is "ignore-file" or "vex"; Reason is the entry's own text.
	Source string `json:"source"`
	Reason string `json:"reason,omitempty"`
}

// Unmatched is a package that could not be checked against the database.
type Unmatched struct {
	Package Package `json:"package"`
	Reason  string  `json:"reason"`
}

// Database describes the vulnerability database a report was made with.
type Database struct {
	Built time.Time `json:"built"`
}
