// Package rpm extracts the packages rpm installed on Red Hat, CentOS,
// Rocky, AlmaLinux, Fedora, Amazon Linux, openSUSE and SUSE roots from the
// rpm database, in each of the three formats rpm has used: Berkeley DB
// (var/lib/rpm/Packages), NDB (Packages.db, SUSE) and SQLite
// (rpmdb.sqlite, RHEL 9 and Fedora 33 on). It owns reading those files
// into model.Package values; matching them against vulnerabilities is not
// its business.
//
// The databases are read here rather than with go-rpmdb
// (github.com/knqyf263/go-rpmdb and its forks): its Berkeley DB and NDB
// readers panic on crafted input in a goroutine of their own, which takes
// the process down out of reach of recover, and leak that goroutine on
// every error. The SQLite database is read with modernc.org/sqlite through
// a read-only VFS over f.Content, so nothing is copied to disk and nothing
// is written next to the file.
package rpm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/bulwarkhq/bulwark/internal/extract"
	"github.com/bulwarkhq/bulwark/internal/model"
)

// Name identifies the extractor.
const Name = "os/rpm"

// Limits on what is read. A full RHEL or SLES server's Packages file is
// some hundred MiB; the largest package headers (long file lists) are a
// few MiB, and rpm itself refuses headers past 256 MiB.
const (
	MaxFileSize   = 512 << 20
	MaxHeaderSize = 64 << 20
)

// dbPaths are the places rpm keeps its package database: var/lib/rpm
// traditionally, usr/lib/sysimage/rpm on openSUSE and on Fedora 36 on.
var dbPaths = map[string]bool{
	"var/lib/rpm/Packages":              true,
	"var/lib/rpm/Packages.db":           true,
	"var/lib/rpm/rpmdb.sqlite":          true,
	"usr/lib/sysimage/rpm/Packages":     true,
	"usr/lib/sysimage/rpm/Packages.db":  true,
	"usr/lib/sysimage/rpm/rpmdb.sqlite": true,
}

// ErrMalformed marks databases, and package headers in them, that cannot
// be read. Extract reports broken headers and goes on with the others.
var ErrMalformed = errors.New("malformed rpm database")

// Extractor reads rpm databases.
type Extractor struct{}

var _ extract.Extractor = (*Extractor)(nil)

// New returns an rpm extractor.
func New() *Extractor { return &Extractor{} }

// Name implements extract.Extractor.
func (*Extractor) Name() string { return Name }

// Version implements extract.Extractor.
func (*Extractor) Version() int { return 1 }

// Required reports whether path is an rpm package database. Sizes are not
// judged here: Extract refuses files that are too large, so they are
// reported rather than skipped unseen.
func (*Extractor) Required(path string, mode fs.FileMode, _ int64) bool {
	return mode.IsRegular() && dbPaths[path]
}

// recordFunc is called with each package header a database holds, and
// the number rpm knows it by. The header is only valid during the call.
type recordFunc func(id int64, header []byte)

// reader reads every package header in a database of one format. It
// reports headers it cannot read to p and goes on; it returns an error
// when it cannot go on.
type reader func(ctx context.Context, r io.ReaderAt, size int64, p *problems, fn recordFunc) error

// Extract reads the installed packages in f, whichever format the
// database is in. For a database with unreadable package headers it
// returns the packages it could read together with an error wrapping
// ErrMalformed that names the file and the records at fault.
func (*Extractor) Extract(ctx context.Context, f *extract.File) (pkgs []model.Package, err error) {
	if f.Size > MaxFileSize {
		return nil, fmt.Errorf("%s: %d bytes, limit %d: %w", f.Path, f.Size, MaxFileSize, extract.ErrTooLarge)
	}
	// Bugs in this package or in SQLite must not take a scan down; the
	// fuzz test fails on errors that come from here.
	defer func() {
		if r := recover(); r != nil {
			pkgs, err = nil, fmt.Errorf("%s: reading rpm database: internal error: %v", f.Path, r)
		}
	}()
	read, err := detect(f.Content, f.Size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	pc := newPackager(f)
	p := &problems{}
	err = read(ctx, f.Content, f.Size, p, func(id int64, header []byte) {
		if pkg, ok := pc.pkg(id, header, p); ok {
			pkgs = append(pkgs, pkg)
		}
	})
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, ctx.Err())
	}
	if err != nil {
		return pkgs, errors.Join(fmt.Errorf("%s: %w", f.Path, err), p.err(f.Path))
	}
	return pkgs, p.err(f.Path)
}

var sqliteMagic = []byte("SQLite format 3\x00")

// detect tells the database format by its magic number, not by its name:
// a Packages file may well be an NDB or SQLite database.
func detect(r io.ReaderAt, size int64) (reader, error) {
	if size == 0 {
		return nil, malformed("empty file")
	}
	var b [16]byte
	n, err := r.ReadAt(b[:min(size, int64(len(b)))], 0)
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) == min(size, int64(len(b)))) {
		return nil, err
	}
	switch {
	case n == len(b) && bytes.Equal(b[:], sqliteMagic):
		return readSQLite, nil
	case n >= 4 && binary.LittleEndian.Uint32(b[:]) == ndbMagic:
		return readNDB, nil
	case n == len(b) && (binary.LittleEndian.Uint32(b[12:]) == bdbHashMagic || binary.BigEndian.Uint32(b[12:]) == bdbHashMagic):
		return readBDB, nil
	}
	return nil, malformed("not an rpm database: no SQLite, NDB or Berkeley DB hash magic number")
}

// packager turns package headers into packages of one root.
type packager struct {
	path      string
	ecosystem string
	namespace string // PURL namespace: the vendor
	distro    string // PURL distro qualifier
}

func newPackager(f *extract.File) *packager {
	pc := &packager{path: f.Path}
	o := f.OS
	if o == nil {
		return pc
	}
	id := strings.ToLower(o.ID)
	if !validToken(id) {
		return pc
	}
	if vendor, ok := purlVendors[id]; ok {
		pc.namespace = vendor
		pc.ecosystem = o.Ecosystem()
	} else {
		pc.namespace = id
	}
	if o.VersionID != "" {
		pc.distro = id + "-" + o.VersionID
	}
	return pc
}

// purlVendors maps the os-release IDs of rpm-based distributions to the
// vendor PURLs name them by. The ecosystem comes from extract.OS for
// these only: a root of another kind with an rpm database in it does not
// make the packages its distribution's.
var purlVendors = map[string]string{
	"rhel":                "redhat",
	"centos":              "centos",
	"rocky":               "rocky",
	"almalinux":           "almalinux",
	"fedora":              "fedora",
	"amzn":                "amzn",
	"opensuse":            "opensuse",
	"opensuse-leap":       "opensuse",
	"opensuse-tumbleweed": "opensuse",
	"sles":                "suse",
	"sled":                "suse",
	"sle-micro":           "suse",
}

// pkg returns the package a header describes, or false for a header that
// is broken (reported to p) or no package (rpm's gpg-pubkey entries, which
// hold the keys rpm trusts).
func (pc *packager) pkg(id int64, blob []byte, p *problems) (model.Package, bool) {
	h, err := parseHeader(blob)
	if err != nil {
		p.add("record %d: %v", id, err)
		return model.Package{}, false
	}
	if h.name == "gpg-pubkey" {
		return model.Package{}, false
	}
	if err := h.validate(); err != nil {
		p.add("record %d: package %q: %v", id, h.name, err)
		return model.Package{}, false
	}
	pkg := model.Package{
		Name:      h.name,
		Version:   h.evr(),
		Ecosystem: pc.ecosystem,
		PURL:      pc.purl(h),
		Path:      pc.path,
		Extractor: Name,
	}
	// rpm writes "(none)" where a tag has no value.
	if h.sourceRPM != "" && h.sourceRPM != "(none)" {
		name, ver, err := parseSourceRPM(h.sourceRPM)
		if err != nil {
			p.add("record %d: package %s: %v", id, h.name, err)
		} else {
			pkg.SourceName = name
			// A source RPM's file name has no epoch; its binary packages
			// share the spec's, and advisories give it with the version.
			if h.epoch != 0 {
				ver = fmt.Sprintf("%d:%s", h.epoch, ver)
			}
			pkg.SourceVersion = ver
		}
	}
	return pkg, true
}

// purl is pkg:rpm/VENDOR/NAME@VERSION-RELEASE with the epoch, arch and
// distribution as qualifiers.
func (pc *packager) purl(h header) string {
	var q packageurl.Qualifiers
	if h.arch != "" {
		q = append(q, packageurl.Qualifier{Key: "arch", Value: h.arch})
	}
	if h.epoch != 0 {
		q = append(q, packageurl.Qualifier{Key: "epoch", Value: fmt.Sprint(h.epoch)})
	}
	if pc.distro != "" {
		q = append(q, packageurl.Qualifier{Key: "distro", Value: pc.distro})
	}
	return packageurl.NewPackageURL(packageurl.TypeRPM, pc.namespace, h.name, h.version+"-"+h.release, q, "").ToString()
}

// parseSourceRPM splits a source RPM's file name,
// "openssl-3.0.7-27.el9.src.rpm", into its name and version-release:
// "openssl", "3.0.7-27.el9". Names may hold dashes, versions and releases
// may not, so it is split from the right.
func parseSourceRPM(s string) (name, version string, err error) {
	base, ok := strings.CutSuffix(s, ".src.rpm")
	if !ok {
		base, ok = strings.CutSuffix(s, ".nosrc.rpm")
	}
	if ok {
		if i := strings.LastIndexByte(base, '-'); i > 0 {
			if j := strings.LastIndexByte(base[:i], '-'); j > 0 {
				name, ver, rel := base[:j], base[j+1:i], base[i+1:]
				if validName(name) && validVersion(ver) && validVersion(rel) {
					return name, ver + "-" + rel, nil
				}
			}
		}
	}
	return "", "", fmt.Errorf("invalid source RPM %q", truncate(s))
}

// problems collects what is wrong with a database, keeping the first few.
type problems struct {
	msgs  []string
	count int
}

// maxProblems bounds how many problems one error spells out.
const maxProblems = 10

func (p *problems) add(format string, args ...any) {
	p.count++
	if len(p.msgs) < maxProblems {
		p.msgs = append(p.msgs, fmt.Sprintf(format, args...))
	}
}

// err returns nil when nothing was wrong, otherwise an error wrapping
// ErrMalformed and extract.ErrMalformed that names the file and the
// first problems.
func (p *problems) err(path string) error {
	if p.count == 0 {
		return nil
	}
	msg := strings.Join(p.msgs, "; ")
	if more := p.count - len(p.msgs); more > 0 {
		msg += fmt.Sprintf("; and %d more", more)
	}
	return fmt.Errorf("%s: %w", path, malformed("%s", msg))
}

// malformedError is both this extractor's kind of error and
// extract.ErrMalformed, so a scan can count malformed input of every
// extractor alike.
type malformedError struct{ msg string }

func malformed(format string, args ...any) error {
	return &malformedError{msg: fmt.Sprintf(format, args...)}
}

func (e *malformedError) Error() string   { return ErrMalformed.Error() + ": " + e.msg }
func (e *malformedError) Unwrap() []error { return []error{ErrMalformed, extract.ErrMalformed} }
