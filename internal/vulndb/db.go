package vulndb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// DB is an open, read-only vulnerability database. Opening it reads no
// records: lookups go through the on-disk index.
type DB struct {
	path string
	bolt *bolt.DB
}

// Open opens the database in dir for reading.
func Open(dir string) (*DB, error) {
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w in %s: run `bulwark db import` or `bulwark db update`", ErrNoDatabase, dir)
		}
		return nil, fmt.Errorf("opening vulnerability database: %w", err)
	}
	b, err := bolt.Open(path, 0o644, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening vulnerability database %s: %w", path, err)
	}
	db := &DB{path: path, bolt: b}
	err = b.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || tx.Bucket(bucketIndex) == nil || tx.Bucket(bucketRecords) == nil {
			return fmt.Errorf("%s is not a Bulwark vulnerability database", path)
		}
		if v := meta.Get([]byte("schema")); string(v) != schemaVersion {
			return fmt.Errorf("database schema %q, this version of bulwark reads %s: run `bulwark db import` to rebuild", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		b.Close()
		return nil, err
	}
	return db, nil
}

// Close releases the database.
func (db *DB) Close() error { return db.bolt.Close() }

// Status describes the database.
type Status struct {
	Path       string            `json:"path"`
	Built      time.Time         `json:"built"`
	Records    int               `json:"records"`
	Ecosystems []EcosystemStatus `json:"ecosystems"`
	Rejected   []Rejected        `json:"rejected,omitempty"`
}

// Status reads the database's counts and rejected records.
func (db *DB) Status() (*Status, error) {
	st := &Status{Path: db.path}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if built, err := time.Parse(time.RFC3339, string(tx.Bucket(bucketMeta).Get([]byte("built")))); err == nil {
			st.Built = built
		}
		st.Records = tx.Bucket(bucketRecords).Stats().KeyN
		if err := tx.Bucket(bucketEcosystems).ForEach(func(_, v []byte) error {
			var es EcosystemStatus
			if err := json.Unmarshal(v, &es); err != nil {
				return err
			}
			st.Ecosystems = append(st.Ecosystems, es)
			return nil
		}); err != nil {
			return fmt.Errorf("reading ecosystem counts: %w", err)
		}
		return tx.Bucket(bucketRejected).ForEach(func(_, v []byte) error {
			var r Rejected
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			st.Rejected = append(st.Rejected, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("reading database status: %w", err)
	}
	return st, nil
}

// Result is what Match found.
type Result struct {
	Findings  []model.Finding
	Unmatched []model.Unmatched
}

// Match finds the vulnerabilities affecting each package. Records that
// are aliases of one another (GO-…, GHSA-…, CVE-…) become one finding per
// package.
func (db *DB) Match(ctx context.Context, pkgs []model.Package) (*Result, error) {
	res := &Result{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		m := matcher{index: tx.Bucket(bucketIndex).Cursor(), records: tx.Bucket(bucketRecords), cache: map[string]*storedRecord{}, versions: versionCache{}}
		for i, p := range pkgs {
			if i%256 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if p.MatchVersion() == "" {
				res.Unmatched = append(res.Unmatched, model.Unmatched{Package: p, Reason: "no version"})
				continue
			}
			hits, err := m.lookup(p)
			if err != nil {
				var unparsable *unparsableError
				if errors.As(err, &unparsable) {
					res.Unmatched = append(res.Unmatched, model.Unmatched{Package: p, Reason: err.Error()})
					continue
				}
				return err
			}
			findings, err := m.group(p, hits)
			if err != nil {
				return err
			}
			res.Findings = append(res.Findings, findings...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("matching packages: %w", err)
	}
	return res, nil
}

type unparsableError struct{ err error }

func (e *unparsableError) Error() string { return e.err.Error() }
func (e *unparsableError) Unwrap() error { return e.err }

type matcher struct {
	index    *bolt.Cursor
	records  *bolt.Bucket
	cache    map[string]*storedRecord
	versions versionCache
}

// hit is one matched index entry.
type hit struct {
	entry entry
	fixed string
}

func (m *matcher) lookup(p model.Package) ([]hit, error) {
	prefix := indexPrefix(p.Ecosystem, p.MatchName())
	var hits []hit
	for k, v := m.index.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = m.index.Next() {
		var e entry
		r := entryReader{b: v}
		if err := r.decodeMatch(&e); err != nil {
			return nil, fmt.Errorf("reading index entry of %s: %w", keyID(k, prefix), err)
		}
		ok, fixed, err := e.affects(m.versions, p.Ecosystem, p.MatchVersion())
		if err != nil {
			return nil, &unparsableError{err}
		}
		if !ok {
			continue
		}
		if err := r.decodeRest(&e); err != nil {
			return nil, fmt.Errorf("reading index entry of %s: %w", keyID(k, prefix), err)
		}
		hits = append(hits, hit{entry: e, fixed: fixed})
	}
	return hits, nil
}

func (m *matcher) record(id string) (*storedRecord, error) {
	if r, ok := m.cache[id]; ok {
		return r, nil
	}
	v := m.records.Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("index names record %s, which is missing", id)
	}
	var r storedRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("reading record %s: %w", id, err)
	}
	m.cache[id] = &r
	return &r, nil
}

// group merges the hits of one package that describe the same flaw.
func (m *matcher) group(p model.Package, hits []hit) ([]model.Finding, error) {
	if len(hits) == 0 {
		return nil, nil
	}
	// Collapse several affected entries of one record first.
	byID := map[string]hit{}
	var ids []string
	for _, h := range hits {
		if prev, ok := byID[h.entry.ID]; ok {
			byID[h.entry.ID] = better(prev, h)
			continue
		}
		byID[h.entry.ID] = h
		ids = append(ids, h.entry.ID)
	}
	sort.Slice(ids, func(i, j int) bool { return idLess(ids[i], ids[j]) })
	recs := make([]*storedRecord, len(ids))
	for i, id := range ids {
		r, err := m.record(id)
		if err != nil {
			return nil, err
		}
		recs[i] = r
	}
	parent := make([]int, len(ids))
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for i := range recs {
		for j := i + 1; j < len(recs); j++ {
			if sameFlaw(recs[i], recs[j]) {
				parent[find(j)] = find(i)
			}
		}
	}
	var out []model.Finding
	for i := range recs {
		if find(i) != i {
			continue
		}
		f := model.Finding{Package: p, VulnerabilityID: recs[i].ID, Summary: recs[i].Summary}
		best := byID[recs[i].ID]
		for j := range recs {
			if find(j) != i {
				continue
			}
			if j != i {
				f.Aliases = append(f.Aliases, recs[j].ID)
				best = better(best, byID[recs[j].ID])
				if f.Summary == "" {
					f.Summary = recs[j].Summary
				}
			}
			f.Aliases = append(f.Aliases, recs[j].Aliases...)
			f.References = append(f.References, recs[j].References...)
		}
		f.Aliases = mergeIDs(f.VulnerabilityID, f.Aliases)
		slices.SortFunc(f.Aliases, strings.Compare)
		f.References = mergeIDs("", f.References)
		sev := best.entry.Severity
		f.Severity, f.CVSSScore, f.CVSSVector, f.SeveritySource = sev.Rating, sev.Score, sev.Vector, sev.Source
		f.FixedVersion = best.fixed
		out = append(out, f)
	}
	return out, nil
}

// better picks between two hits of one flaw: the one with a known fix,
// then the one with the better-founded severity.
func better(a, b hit) hit {
	if (a.fixed == "") != (b.fixed == "") {
		if a.fixed != "" {
			return a
		}
		return b
	}
	if sevWeight(b.entry.Severity) > sevWeight(a.entry.Severity) {
		return b
	}
	return a
}

// sevWeight prefers a CVSS score to a stated rating, and a stated rating to
// none, then the higher rating.
func sevWeight(s Score) int {
	w := s.Rating.Rank()
	if s.Rating != model.SeverityUnknown {
		w += 10
	}
	if s.Vector != "" {
		w += 10
	}
	return w
}

func sameFlaw(a, b *storedRecord) bool {
	if contains(a.Aliases, b.ID) || contains(b.Aliases, a.ID) {
		return true
	}
	for _, x := range a.Aliases {
		if contains(b.Aliases, x) {
			return true
		}
	}
	return false
}

// idPreference orders id prefixes: the ecosystem's own advisory databases
// first, then GitHub's, then the rest.
var idPreference = []string{"GO-", "RUSTSEC-", "PYSEC-", "GHSA-"}

func idRank(id string) int {
	for i, p := range idPreference {
		if strings.HasPrefix(id, p) {
			return i
		}
	}
	return len(idPreference)
}

func idLess(a, b string) bool {
	if ra, rb := idRank(a), idRank(b); ra != rb {
		return ra < rb
	}
	return a < b
}
