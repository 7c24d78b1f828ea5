package scan

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// ustarHeader builds a header block by hand, for entry types archive/tar
// will not write (a PAX extended header).
func ustarHeader(name string, typ byte, size int) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// sparseLayer is a tar holding a GNU sparse (PAX 1.0) file at name whose
// logical size is 10 GiB and whose stored data is one byte.
func sparseLayer(name string) []byte {
	var pax bytes.Buffer
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.name", name}, {"GNU.sparse.realsize", "10737418240"}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 2
		for len(fmt.Sprint(n))+len(rec) != n {
			n = len(fmt.Sprint(n)) + len(rec)
		}
		fmt.Fprintf(&pax, "%d%s", n, rec)
	}
	var buf bytes.Buffer
	buf.Write(ustarHeader("PaxHeaders/sparse", 'x', pax.Len()))
	buf.Write(pax.Bytes())
	buf.Write(make([]byte, (512-pax.Len()%512)%512))
	tw := tar.NewWriter(&buf)
	data := make([]byte, 512)
	copy(data, "1\n10737418239\n1\n") // one data region: the last byte
	data = append(data, 'x')
	tw.WriteHeader(&tar.Header{Name: "GNUSparseFile.0/sparse", Typeflag: tar.TypeReg, Size: int64(len(data)), Mode: 0o644, Format: tar.FormatUSTAR})
	tw.Write(data)
	status := dpkgStanza("curl", "7.88.1-10+deb12u5")
	tw.WriteHeader(&tar.Header{Name: "var/lib/dpkg/status", Typeflag: tar.TypeReg, Size: int64(len(status)), Mode: 0o644})
	tw.Write([]byte(status))
	tw.Close()
	return buf.Bytes()
}

// TestSparseTenGigabyteFile scans a layer whose wanted file claims 10 GiB
// (stored sparse, so the layer is tiny): it is skipped with a warning, not
// read or written, and the rest of the layer is scanned.
func TestSparseTenGigabyteFile(t *testing.T) {
	data := sparseLayer("srv/app/package-lock.json")
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	s := testScanner(t)
	r, err := s.Image(context.Background(), image(t, l), model.Target{Kind: model.TargetImage, Name: "sparse"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "skipped srv/app/package-lock.json: 10737418240 bytes") {
		t.Errorf("warnings = %q, want the sparse file skipped", r.Warnings)
	}
	if !hasPackage(r, "curl") {
		t.Error("the rest of the layer was not scanned")
	}
}
