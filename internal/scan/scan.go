package scan

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/extract/osrelease"
	"github.com/bulwarkhq/bulwark/internal/model"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

// Limits bound what a scan reads, so hostile or huge images cost bounded
// time, memory and disk.
type Limits struct {
	// MaxFileSize is the largest single file read for extractors.
	MaxFileSize int64
	// MaxStored bounds the bytes of files kept on disk during a scan.
	MaxStored int64
	// MaxLayerSize bounds one layer's uncompressed size.
	MaxLayerSize int64
}

// DefaultLimits are generous for real images and stop decompression bombs.
func DefaultLimits() Limits {
	return Limits{MaxFileSize: 512 << 20, MaxStored: 4 << 30, MaxLayerSize: 32 << 30}
}

// Matcher finds the vulnerabilities of packages; *vulndb.DB is one.
type Matcher interface {
	Match(ctx context.Context, pkgs []model.Package) (*vulndb.Result, error)
}

// Scanner finds the packages in images and directories and matches them
// against the vulnerability database.
type Scanner struct {
	Extractors []extract.Extractor
	Matcher    Matcher
	// Built is the database's build time, for the report.
	Built  time.Time
	Limits Limits
	// WorkDir is where a scan keeps the files it reads; a temporary
	// directory under it is removed when the scan ends. Empty means the
	// system's temporary directory.
	WorkDir string
	// Cache, when set, keeps what was read from each layer for later
	// scans.
	Cache  *LayerCache
	Logger *slog.Logger
	// Progress, when set, receives one line per step (each layer read or
	// taken from the cache, extraction, matching); the command line sets
	// it when standard error is a terminal.
	Progress io.Writer
}

func (s *Scanner) progress(format string, args ...any) {
	if s.Progress != nil {
		fmt.Fprintf(s.Progress, format+"\n", args...)
	}
}

// run holds one scan's state.
type run struct {
	s        *Scanner
	work     string
	tree     *tree
	warnings []string
}

func (s *Scanner) newRun() (*run, error) {
	work, err := os.MkdirTemp(s.WorkDir, "bulwark-scan-")
	if err != nil {
		return nil, fmt.Errorf("creating scan work directory: %w", err)
	}
	return &run{s: s, work: work, tree: newTree()}, nil
}

func (r *run) close() { os.RemoveAll(r.work) }

func (r *run) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.warnings = append(r.warnings, msg)
	if r.s.Logger != nil {
		r.s.Logger.Warn(msg)
	}
}

// wanted reports whether any extractor, or OS detection, reads the file.
func (r *run) wanted(p string, mode fs.FileMode, size int64) bool {
	if slices.Contains(osrelease.Paths, p) || p == osrelease.AlpineReleasePath || isDpkgList(p) {
		return true
	}
	for _, e := range r.s.Extractors {
		if e.Required(p, mode, size) {
			return true
		}
	}
	return false
}

// Image scans an image's layers, bottom first. target names it in the
// report; its digest, platform and layers are filled in here.
func (s *Scanner) Image(ctx context.Context, img v1.Image, target model.Target) (*model.Report, error) {
	r, err := s.newRun()
	if err != nil {
		return nil, err
	}
	defer r.close()
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("reading image digest: %w", err)
	}
	target.Digest = digest.String()
	if cfg, err := img.ConfigFile(); err == nil && cfg.OS != "" {
		target.Platform = cfg.Platform().String()
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading image layers: %w", err)
	}
	c := &collector{tree: r.tree, work: r.work, wanted: r.wanted, limits: s.limits(), warn: r.warn, cache: s.Cache}
	if s.Cache != nil {
		c.cacheKey = cacheKey(s.Extractors, c.limits)
		// Evict only when the scan is over: its tree may point into entries.
		defer func() {
			if err := s.Cache.evict(); err != nil && s.Logger != nil {
				s.Logger.Warn("layer cache eviction failed", "err", err)
			}
		}()
	}
	for i, l := range layers {
		d, _ := l.Digest()
		s.progress("layer %d/%d %s", i+1, len(layers), short(d.String()))
		if err := c.addLayer(ctx, l); err != nil {
			return nil, err
		}
		target.Layers = append(target.Layers, d.String())
	}
	return r.finish(ctx, target)
}

func (s *Scanner) limits() Limits {
	l := s.Limits
	d := DefaultLimits()
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = d.MaxFileSize
	}
	if l.MaxStored <= 0 {
		l.MaxStored = d.MaxStored
	}
	if l.MaxLayerSize <= 0 {
		l.MaxLayerSize = d.MaxLayerSize
	}
	return l
}

// Dir scans a directory: an unpacked root filesystem or a project. Files
// are read where they are; symbolic links are never followed out of dir.
func (s *Scanner) Dir(ctx context.Context, dir string) (*model.Report, error) {
	r, err := s.newRun()
	if err != nil {
		return nil, err
	}
	defer r.close()
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", dir, err)
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("scanning %s: not a directory", dir)
	}
	limits := s.limits()
	n := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			r.warn("skipped %s: %v", p, err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		n++
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				r.warn("skipped %s: %v", rel, err)
				return nil
			}
			r.tree.nodes[rel] = &node{kind: kindSymlink, target: target}
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				r.warn("skipped %s: %v", rel, err)
				return nil
			}
			if !r.wanted(rel, info.Mode(), info.Size()) {
				return nil
			}
			if info.Size() > limits.MaxFileSize {
				r.warn("skipped %s: %d bytes, over the %d-byte file limit", rel, info.Size(), limits.MaxFileSize)
				return nil
			}
			r.tree.nodes[rel] = &node{kind: kindFile, mode: info.Mode(), size: info.Size(), contentPath: p}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scanning %s: %w", dir, err)
	}
	return r.finish(ctx, model.Target{Kind: model.TargetFS, Name: dir})
}

// finish detects the OS, runs the extractors over the collected files and
// matches what they found.
func (r *run) finish(ctx context.Context, target model.Target) (*model.Report, error) {
	osInfo, err := osrelease.Detect(r.tree.fs())
	if err != nil {
		r.warn("reading os-release: %v", err)
	}
	r.s.progress("reading %d files", len(r.tree.files()))
	pkgs, err := r.extract(ctx, osInfo)
	if err != nil {
		return nil, err
	}
	toMatch := markOwned(pkgs, r.osOwners())
	r.s.progress("matching %d packages", len(toMatch))
	res, err := r.s.Matcher.Match(ctx, toMatch)
	if err != nil {
		return nil, err
	}
	rep := &model.Report{
		SchemaVersion: model.ReportSchemaVersion,
		CreatedAt:     time.Now().UTC(),
		Target:        target,
		Packages:      pkgs,
		Findings:      res.Findings,
		Unmatched:     res.Unmatched,
		Warnings:      r.warnings,
		Database:      model.Database{Built: r.s.Built},
	}
	if rep.Packages == nil {
		rep.Packages = []model.Package{}
	}
	if rep.Findings == nil {
		rep.Findings = []model.Finding{}
	}
	if osInfo != nil {
		rep.OS = &model.OS{ID: osInfo.ID, VersionID: osInfo.VersionID, PrettyName: osInfo.PrettyName, Ecosystem: osInfo.Ecosystem()}
	}
	SortFindings(rep.Findings)
	return rep, nil
}

func (r *run) extract(ctx context.Context, osInfo *extract.OS) ([]model.Package, error) {
	var pkgs []model.Package
	for _, p := range r.tree.files() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := r.tree.nodes[p]
		for _, e := range r.s.Extractors {
			if !e.Required(p, n.mode, n.size) {
				continue
			}
			found, err := extractFile(ctx, e, p, n, osInfo)
			if err != nil {
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					return nil, err
				}
				r.warn("%s: %v", e.Name(), err)
			}
			for i := range found {
				found[i].Layer = n.layer
			}
			pkgs = append(pkgs, found...)
		}
	}
	return pkgs, nil
}

func extractFile(ctx context.Context, e extract.Extractor, p string, n *node, osInfo *extract.OS) ([]model.Package, error) {
	f, err := os.Open(n.contentPath)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	defer f.Close()
	return e.Extract(ctx, &extract.File{Path: p, Size: n.size, Content: f, OS: osInfo})
}

// SortFindings orders findings by package, then most severe first, then id.
func SortFindings(fs []model.Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Package.Name != b.Package.Name {
			return a.Package.Name < b.Package.Name
		}
		if a.Package.Path != b.Package.Path {
			return a.Package.Path < b.Package.Path
		}
		if ra, rb := a.Severity.Rank(), b.Severity.Rank(); ra != rb {
			return ra > rb
		}
		return strings.Compare(a.VulnerabilityID, b.VulnerabilityID) < 0
	})
}
