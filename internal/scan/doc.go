// Package scan finds the installed packages of an image or a directory and
// the vulnerabilities that affect them. For an image it streams each layer
// once, bottom first, keeping only the files extractors ask for (on disk,
// in a work directory removed afterwards) and applying whiteouts and opaque
// directories across layers; then it detects the OS, runs the extractors
// over the merged view and matches what they found.
//
// Layers are hostile input: entries that try to leave the root are
// skipped with a warning, symbolic links resolve inside the root, nothing
// is written under a name taken from a layer, and files, stored bytes and
// decompressed layer sizes are bounded (Limits).
//
// It does not parse package formats (see extract) or know vulnerabilities
// (see vulndb), and it does not write reports (see report).
package scan
