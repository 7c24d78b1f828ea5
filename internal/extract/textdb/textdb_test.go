package textdb

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/extract"
)

func TestReaderBoundsLines(t *testing.T) {
	in := "short\r\n" + strings.Repeat("x", 100) + "\nlast"
	r := NewReader(strings.NewReader(in), 10)
	type line struct {
		n       int
		text    string
		tooLong bool
	}
	var got []line
	for {
		b, tooLong, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, line{r.Line(), string(b), tooLong})
	}
	want := []line{{1, "short", false}, {2, "", true}, {3, "last", false}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(line{})); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestProblems(t *testing.T) {
	kind := errors.New("malformed test database")
	p := Problems{Path: "var/lib/x", Kind: kind}
	if p.Err() != nil {
		t.Fatal("no problems, yet an error")
	}
	for i := 1; i <= 12; i++ {
		p.Add(i, "bad %d", i)
	}
	err := p.Err()
	if !errors.Is(err, kind) || !errors.Is(err, extract.ErrMalformed) {
		t.Errorf("error %v wraps neither its kind nor extract.ErrMalformed", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "var/lib/x: malformed test database: line 1: bad 1;") || !strings.HasSuffix(msg, "; and 2 more") {
		t.Errorf("error = %q", msg)
	}
}
