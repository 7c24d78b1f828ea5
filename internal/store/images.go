package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// maxSBOM bounds a stored package list when it is read back (gzip'd
// JSON expands; a corrupt or hostile row must not exhaust memory).
const maxSBOM = 256 << 20

// SeeImage records that an image was seen at a reference and returns its
// id, creating the image when its digest is new. A ref with a zero
// RegistryID is stored without one (images from push notifications of
// unknown registries, or scanned by hand).
func (s *DB) SeeImage(ctx context.Context, digest string, ref ImageRef, at time.Time) (int64, error) {
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, s.q(`INSERT INTO images (digest, first_seen_at, last_seen_at) VALUES (?, ?, ?)
			ON CONFLICT (digest) DO UPDATE SET last_seen_at = excluded.last_seen_at RETURNING id`),
			digest, ms(at), ms(at)).Scan(&id)
		if err != nil {
			return fmt.Errorf("recording image %s: %w", digest, err)
		}
		if ref.Host == "" && ref.Repository == "" {
			return nil
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO image_refs (image_id, registry_id, host, repository, tag, first_seen_at, last_seen_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (host, repository, tag, image_id) DO UPDATE SET last_seen_at = excluded.last_seen_at, registry_id = excluded.registry_id`),
			id, nullID(ref.RegistryID), ref.Host, ref.Repository, ref.Tag, ms(at), ms(at))
		if err != nil {
			return fmt.Errorf("recording reference %s/%s:%s of %s: %w", ref.Host, ref.Repository, ref.Tag, digest, err)
		}
		return nil
	})
	return id, err
}

// Result is what a scan or a re-match found in an image.
type Result struct {
	// Packages is the image's SBOM; nil for a re-match, which keeps the
	// stored one.
	Packages []model.Package
	Findings []model.Finding
	Platform string
	OS       string
	Warnings []string
	DBBuilt  time.Time
	At       time.Time
}

// SaveResult stores a scan's packages and findings for an image. Findings
// that were open and are no longer reported get a fixed-at time; ones seen
// again keep their first-seen time. It returns the open findings' summary.
func (s *DB) SaveResult(ctx context.Context, imageID int64, r Result) (Summary, error) {
	var sum Summary
	r.Platform, r.OS = clean(r.Platform, 100), clean(r.OS, 200)
	for _, f := range dedupeFindings(r.Findings) {
		sum.add(f)
	}
	var sbom []byte
	if r.Packages != nil {
		var err error
		if sbom, err = encodeSBOM(r.Packages); err != nil {
			return sum, err
		}
	}
	warnings, err := json.Marshal(nonNil(r.Warnings))
	if err != nil {
		return sum, fmt.Errorf("encoding warnings: %w", err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.saveFindings(ctx, tx, imageID, dedupeFindings(r.Findings), r.At); err != nil {
			return err
		}
		var res sql.Result
		var err error
		counts := []any{sum.Critical, sum.High, sum.Medium, sum.Low, sum.Unknown, sum.Fixable}
		if sbom != nil {
			args := append([]any{r.Platform, r.OS, ms(r.At), ms(r.At), msOrNull(r.DBBuilt), sbom, len(r.Packages), string(warnings)}, counts...)
			res, err = tx.ExecContext(ctx, s.q(`UPDATE images SET platform = ?, os = ?, scanned_at = ?, matched_at = ?, db_built_at = ?, sbom = ?, package_count = ?, warnings = ?,
				critical = ?, high = ?, medium = ?, low = ?, unknown = ?, fixable = ? WHERE id = ?`), append(args, imageID)...)
		} else {
			args := append([]any{ms(r.At), msOrNull(r.DBBuilt)}, counts...)
			res, err = tx.ExecContext(ctx, s.q(`UPDATE images SET matched_at = ?, db_built_at = ?,
				critical = ?, high = ?, medium = ?, low = ?, unknown = ?, fixable = ? WHERE id = ?`), append(args, imageID)...)
		}
		if err != nil {
			return fmt.Errorf("updating image %d: %w", imageID, err)
		}
		return affectedOne(res, "image", imageID)
	})
	return sum, err
}

type findingKey struct{ vuln, name, version, path string }

func keyOf(f model.Finding) findingKey {
	return findingKey{f.VulnerabilityID, f.Package.Name, f.Package.Version, f.Package.Path}
}

// dedupeFindings keeps the first finding of each key: the same flaw in
// the same package at the same path is one row.
func dedupeFindings(fs []model.Finding) []model.Finding {
	seen := make(map[findingKey]bool, len(fs))
	out := fs[:0:0]
	for _, f := range fs {
		f = cleanFinding(f)
		k := keyOf(f)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	return out
}

// cleanFinding bounds and sanitises the text of a finding; names and
// versions come from hostile image content.
func cleanFinding(f model.Finding) model.Finding {
	f.VulnerabilityID = clean(f.VulnerabilityID, 200)
	f.Package.Name = clean(f.Package.Name, 1000)
	f.Package.Version = clean(f.Package.Version, 500)
	f.Package.Ecosystem = clean(f.Package.Ecosystem, 200)
	f.Package.PURL = clean(f.Package.PURL, 2000)
	f.Package.Path = clean(f.Package.Path, 4096)
	f.FixedVersion = clean(f.FixedVersion, 500)
	f.Summary = clean(f.Summary, 1000)
	aliases := make([]string, 0, len(f.Aliases))
	for _, a := range f.Aliases {
		aliases = append(aliases, clean(a, 200))
	}
	f.Aliases = aliases
	return f
}

func (s *DB) saveFindings(ctx context.Context, tx *sql.Tx, imageID int64, fs []model.Finding, at time.Time) error {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT id, vuln_id, package_name, package_version, path, fixed_at, aliases FROM findings WHERE image_id = ?`), imageID)
	if err != nil {
		return fmt.Errorf("reading findings of image %d: %w", imageID, err)
	}
	type old struct {
		id      int64
		fixed   bool
		aliases string
	}
	existing := map[findingKey]old{}
	for rows.Next() {
		var k findingKey
		var o old
		var fixed sql.NullInt64
		if err := rows.Scan(&o.id, &k.vuln, &k.name, &k.version, &k.path, &fixed, &o.aliases); err != nil {
			rows.Close()
			return fmt.Errorf("reading findings of image %d: %w", imageID, err)
		}
		o.fixed = fixed.Valid
		existing[k] = o
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading findings of image %d: %w", imageID, err)
	}

	insert, err := tx.PrepareContext(ctx, s.q(`INSERT INTO findings (image_id, vuln_id, aliases, package_name, package_version, ecosystem, purl, path,
		fixed_version, fixable, severity, severity_rank, cvss, summary, first_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`))
	if err != nil {
		return fmt.Errorf("preparing finding insert: %w", err)
	}
	defer insert.Close()
	update, err := tx.PrepareContext(ctx, s.q(`UPDATE findings SET aliases = ?, ecosystem = ?, purl = ?, fixed_version = ?, fixable = ?, severity = ?,
		severity_rank = ?, cvss = ?, summary = ?, fixed_at = NULL WHERE id = ?`))
	if err != nil {
		return fmt.Errorf("preparing finding update: %w", err)
	}
	defer update.Close()
	addAlias, err := tx.PrepareContext(ctx, s.q(`INSERT INTO finding_aliases (alias, finding_id) VALUES (?, ?) ON CONFLICT DO NOTHING`))
	if err != nil {
		return fmt.Errorf("preparing alias insert: %w", err)
	}
	defer addAlias.Close()
	setAliases := func(id int64, aliases []string) error {
		for _, a := range aliases {
			if _, err := addAlias.ExecContext(ctx, a, id); err != nil {
				return fmt.Errorf("storing alias %s: %w", a, err)
			}
		}
		return nil
	}

	for _, f := range fs {
		aliases, err := json.Marshal(nonNil(f.Aliases))
		if err != nil {
			return fmt.Errorf("encoding aliases: %w", err)
		}
		fixable := boolInt(f.Fixable())
		k := keyOf(f)
		if o, ok := existing[k]; ok {
			delete(existing, k)
			if _, err := update.ExecContext(ctx, string(aliases), f.Package.Ecosystem, f.Package.PURL, f.FixedVersion, fixable, string(f.Severity),
				f.Severity.Rank(), f.CVSSScore, f.Summary, o.id); err != nil {
				return fmt.Errorf("updating finding %s in %s: %w", f.VulnerabilityID, f.Package.Name, err)
			}
			if o.aliases != string(aliases) {
				if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM finding_aliases WHERE finding_id = ?`), o.id); err != nil {
					return fmt.Errorf("replacing aliases of finding %d: %w", o.id, err)
				}
				if err := setAliases(o.id, f.Aliases); err != nil {
					return err
				}
			}
			continue
		}
		var id int64
		if err := insert.QueryRowContext(ctx, imageID, f.VulnerabilityID, string(aliases), f.Package.Name, f.Package.Version, f.Package.Ecosystem,
			f.Package.PURL, f.Package.Path, f.FixedVersion, fixable, string(f.Severity), f.Severity.Rank(), f.CVSSScore, f.Summary, ms(at)).Scan(&id); err != nil {
			return fmt.Errorf("storing finding %s in %s: %w", f.VulnerabilityID, f.Package.Name, err)
		}
		if err := setAliases(id, f.Aliases); err != nil {
			return err
		}
	}
	for _, o := range existing {
		if o.fixed {
			continue
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE findings SET fixed_at = ? WHERE id = ?`), ms(at), o.id); err != nil {
			return fmt.Errorf("closing finding %d: %w", o.id, err)
		}
	}
	return nil
}

func (sum *Summary) add(f model.Finding) {
	switch f.Severity {
	case model.SeverityCritical:
		sum.Critical++
	case model.SeverityHigh:
		sum.High++
	case model.SeverityMedium:
		sum.Medium++
	case model.SeverityLow, model.SeverityNone:
		sum.Low++
	default:
		sum.Unknown++
	}
	if f.Fixable() {
		sum.Fixable++
	}
}

func encodeSBOM(pkgs []model.Package) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(pkgs); err != nil {
		return nil, fmt.Errorf("encoding package list: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing package list: %w", err)
	}
	return buf.Bytes(), nil
}

// Packages returns the stored SBOM of an image; ErrNotFound when the image
// was never scanned.
func (s *DB) Packages(ctx context.Context, imageID int64) ([]model.Package, error) {
	var sbom []byte
	err := s.queryRow(ctx, `SELECT sbom FROM images WHERE id = ?`, imageID).Scan(&sbom)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && sbom == nil) {
		return nil, fmt.Errorf("packages of image %d: %w", imageID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading packages of image %d: %w", imageID, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(sbom))
	if err != nil {
		return nil, fmt.Errorf("reading packages of image %d: %w", imageID, err)
	}
	var pkgs []model.Package
	if err := json.NewDecoder(io.LimitReader(zr, maxSBOM)).Decode(&pkgs); err != nil {
		return nil, fmt.Errorf("decoding packages of image %d: %w", imageID, err)
	}
	return pkgs, nil
}

const imageColumns = `i.id, i.digest, i.platform, i.os, i.first_seen_at, i.last_seen_at, i.scanned_at, i.matched_at, i.db_built_at,
	i.package_count, i.critical, i.high, i.medium, i.low, i.unknown, i.fixable, i.warnings`

func scanImage(row interface{ Scan(...any) error }) (*Image, error) {
	var (
		im                        Image
		first, last               int64
		scanned, matched, dbBuilt sql.NullInt64
		warnings                  string
	)
	if err := row.Scan(&im.ID, &im.Digest, &im.Platform, &im.OS, &first, &last, &scanned, &matched, &dbBuilt, &im.Packages,
		&im.Summary.Critical, &im.Summary.High, &im.Summary.Medium, &im.Summary.Low, &im.Summary.Unknown, &im.Summary.Fixable, &warnings); err != nil {
		return nil, err
	}
	im.FirstSeenAt, im.LastSeenAt = fromMS(first), fromMS(last)
	im.ScannedAt, im.MatchedAt, im.DBBuiltAt = fromNullMS(scanned), fromNullMS(matched), fromNullMS(dbBuilt)
	if err := json.Unmarshal([]byte(warnings), &im.Warnings); err != nil {
		return nil, fmt.Errorf("reading warnings of image %d: %w", im.ID, err)
	}
	return &im, nil
}

// Image returns one image with its references.
func (s *DB) Image(ctx context.Context, id int64) (*Image, error) {
	return s.oneImage(ctx, `i.id = ?`, id)
}

// ImageByDigest returns one image by manifest digest.
func (s *DB) ImageByDigest(ctx context.Context, digest string) (*Image, error) {
	return s.oneImage(ctx, `i.digest = ?`, digest)
}

// ImageByTag returns the image most recently seen under
// host/repository:tag, such as for resolving a tag without asking the
// registry.
func (s *DB) ImageByTag(ctx context.Context, host, repository, tag string) (*Image, error) {
	return s.oneImage(ctx, `i.id = (SELECT image_id FROM image_refs WHERE host = ? AND repository = ? AND tag = ?
		ORDER BY last_seen_at DESC, id DESC LIMIT 1)`, host, repository, tag)
}

func (s *DB) oneImage(ctx context.Context, where string, args ...any) (*Image, error) {
	im, err := scanImage(s.queryRow(ctx, `SELECT `+imageColumns+` FROM images i WHERE `+where, args...))
	what := strings.Trim(fmt.Sprint([]any(args)), "[]")
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("image %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", what, err)
	}
	imgs := []Image{*im}
	if err := s.attachRefs(ctx, imgs); err != nil {
		return nil, err
	}
	return &imgs[0], nil
}

// ImageFilter selects images; zero fields select everything.
type ImageFilter struct {
	RegistryID int64
	Repository string
	Digest     string
	// MinSeverity keeps images with an open finding at least this severe.
	MinSeverity model.Severity
	// Scanned keeps only images scanned (true) or never scanned (false).
	Scanned *bool
}

// Images lists images, newest first, one page at a time.
func (s *DB) Images(ctx context.Context, f ImageFilter, p Page) ([]Image, string, error) {
	c, err := decodeCursor(p.Cursor, "id")
	if err != nil {
		return nil, "", err
	}
	var w conditions
	w.addIf(f.RegistryID != 0, `i.id IN (SELECT image_id FROM image_refs WHERE registry_id = ?)`, f.RegistryID)
	w.addIf(f.Repository != "", `i.id IN (SELECT image_id FROM image_refs WHERE repository = ?)`, f.Repository)
	w.addIf(f.Digest != "", `i.digest = ?`, f.Digest)
	w.addIf(f.MinSeverity != "", `EXISTS (SELECT 1 FROM findings x WHERE x.image_id = i.id AND x.fixed_at IS NULL AND x.severity_rank >= ?)`,
		f.MinSeverity.Rank())
	if f.Scanned != nil {
		if *f.Scanned {
			w.add(`i.scanned_at IS NOT NULL`)
		} else {
			w.add(`i.scanned_at IS NULL`)
		}
	}
	if c != nil {
		w.add(`i.id < ?`, c.ID)
	}
	limit := p.limit()
	query := `SELECT ` + imageColumns + ` FROM images i` + w.sql() + ` ORDER BY i.id DESC LIMIT ?`
	args := append(w.args, limit+1)
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing images: %w", err)
	}
	defer rows.Close()
	var out []Image
	for rows.Next() {
		im, err := scanImage(rows)
		if err != nil {
			return nil, "", fmt.Errorf("listing images: %w", err)
		}
		out = append(out, *im)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing images: %w", err)
	}
	out, next := pageByID(out, limit, func(x Image) int64 { return x.ID })
	if err := s.attachRefs(ctx, out); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

func (s *DB) attachRefs(ctx context.Context, imgs []Image) error {
	if len(imgs) == 0 {
		return nil
	}
	idx := make(map[int64]int, len(imgs))
	args := make([]any, len(imgs))
	for i, im := range imgs {
		idx[im.ID] = i
		args[i] = im.ID
	}
	rows, err := s.query(ctx, `SELECT image_id, registry_id, host, repository, tag, first_seen_at, last_seen_at FROM image_refs
		WHERE image_id IN (`+placeholders(len(imgs))+`) ORDER BY host, repository, tag`, args...)
	if err != nil {
		return fmt.Errorf("reading image references: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r ImageRef
		var reg sql.NullInt64
		var first, last int64
		if err := rows.Scan(&r.ImageID, &reg, &r.Host, &r.Repository, &r.Tag, &first, &last); err != nil {
			return fmt.Errorf("reading image references: %w", err)
		}
		r.RegistryID, r.FirstSeen, r.LastSeen = reg.Int64, fromMS(first), fromMS(last)
		im := &imgs[idx[r.ImageID]]
		im.Refs = append(im.Refs, r)
	}
	return rows.Err()
}

// ScannedImages calls fn with the id and digest of every image that has a
// stored SBOM, for re-matching after a database update.
func (s *DB) ScannedImages(ctx context.Context, fn func(id int64, digest string) error) error {
	rows, err := s.query(ctx, `SELECT id, digest FROM images WHERE sbom IS NOT NULL ORDER BY id`)
	if err != nil {
		return fmt.Errorf("listing scanned images: %w", err)
	}
	type row struct {
		id     int64
		digest string
	}
	var all []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.digest); err != nil {
			rows.Close()
			return fmt.Errorf("listing scanned images: %w", err)
		}
		all = append(all, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("listing scanned images: %w", err)
	}
	for _, r := range all {
		if err := fn(r.id, r.digest); err != nil {
			return err
		}
	}
	return nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// clean makes text from an image safe for both databases: PostgreSQL
// refuses NUL bytes and invalid UTF-8 in text columns. Long values are
// cut at n bytes on a rune boundary.
func clean(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
