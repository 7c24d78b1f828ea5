package scan

import (
	"bufio"
	"os"
	"path"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// dpkgInfoDir holds dpkg's per-package file lists (NAME[:ARCH].list).
const dpkgInfoDir = "var/lib/dpkg/info/"

// maxListSize bounds one dpkg file list.
const maxListSize = 64 << 20

func isDpkgList(p string) bool {
	return strings.HasPrefix(p, dpkgInfoDir) && strings.HasSuffix(p, ".list") && !strings.Contains(p[len(dpkgInfoDir):], "/")
}

// osOwners maps each file the OS package manager installed (as a path
// relative to the root) to the package that owns it, from dpkg's file
// lists in the tree.
func (r *run) osOwners() map[string]string {
	owners := map[string]string{}
	for _, p := range r.tree.files() {
		if !isDpkgList(p) {
			continue
		}
		n := r.tree.nodes[p]
		if n.size > maxListSize {
			r.warn("skipped %s: %d bytes, over the %d-byte limit", p, n.size, maxListSize)
			continue
		}
		pkg, _, _ := strings.Cut(strings.TrimSuffix(path.Base(p), ".list"), ":")
		f, err := os.Open(n.contentPath)
		if err != nil {
			r.warn("reading %s: %v", p, err)
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			if line := strings.TrimPrefix(sc.Text(), "/"); line != "" {
				owners[line] = pkg
			}
		}
		if err := sc.Err(); err != nil {
			r.warn("reading %s: %v", p, err)
		}
		f.Close()
	}
	return owners
}

// compiledIn names the extractors that read executables: what a binary
// embeds was fixed when it was built, and a distribution's advisories for
// the libraries' source packages do not cover copies compiled into other
// programs, so those packages are matched even when an OS package owns
// the executable.
var compiledIn = map[string]bool{"language/gobinary": true, "language/rust": true}

// markOwned sets OwnedBy on language packages read from files an OS
// package installed, and returns the packages to match: all the others.
func markOwned(pkgs []model.Package, owners map[string]string) []model.Package {
	if len(owners) == 0 {
		return pkgs
	}
	toMatch := make([]model.Package, 0, len(pkgs))
	for i := range pkgs {
		p := &pkgs[i]
		if strings.HasPrefix(p.Extractor, "language/") && !compiledIn[p.Extractor] {
			if owner, ok := owners[p.Path]; ok {
				p.OwnedBy = owner
				continue
			}
		}
		toMatch = append(toMatch, *p)
	}
	return toMatch
}
