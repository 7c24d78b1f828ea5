package update

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Change is one line of an export's modified_id.csv: a record and when it
// last changed.
type Change struct {
	Modified time.Time
	ID       string
}

// maxModifiedLine bounds one line of modified_id.csv: a timestamp, a
// comma, perhaps an ecosystem and a slash, and an id.
const maxModifiedLine = 1024

// errUnsorted marks a modified_id.csv that is not newest first, so reading
// it only down to the last sync could miss changes.
var errUnsorted = errors.New("modified_id.csv is not sorted newest first")

// changeList is what readChanges found.
type changeList struct {
	// Changes are the records modified after the time asked for, newest
	// first, each id once.
	Changes []Change
	// Newest is the time on the first line: how far the export reaches.
	// It is zero for an empty file.
	Newest time.Time
	// Overflow is set when there were more changes than the limit; the
	// reading stopped there and Changes holds limit+1 of them.
	Overflow bool
}

// readChanges reads an OSV modified_id.csv — lines "<RFC 3339 time>,<ID>",
// newest first; the export at the bucket's root writes
// "<time>,<Ecosystem>/<ID>" — and returns the changes after since. It
// stops at the first line not after since, or once more than limit
// changes are found, so an up-to-date database reads one line.
func readChanges(r io.Reader, since time.Time, limit int) (*changeList, error) {
	out := &changeList{}
	seen := map[string]bool{}
	br := bufio.NewReaderSize(r, 64<<10)
	var prev time.Time
	for n := 1; ; n++ {
		line, err := readLine(br)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("modified_id.csv line %d: %w", n, err)
		}
		if len(line) == 0 {
			continue
		}
		c, err := parseChange(line)
		if err != nil {
			return nil, fmt.Errorf("modified_id.csv line %d: %w", n, err)
		}
		if out.Newest.IsZero() {
			out.Newest = c.Modified
		} else if c.Modified.After(prev) {
			return nil, fmt.Errorf("line %d (%s after %s): %w", n, c.Modified.Format(time.RFC3339), prev.Format(time.RFC3339), errUnsorted)
		}
		prev = c.Modified
		if !c.Modified.After(since) {
			return out, nil
		}
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		out.Changes = append(out.Changes, c)
		if len(out.Changes) > limit {
			out.Overflow = true
			return out, nil
		}
	}
}

// readLine returns the next line without its line ending, io.EOF after the
// last one, and an error for a line longer than maxModifiedLine.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("line longer than %d bytes", maxModifiedLine)
	}
	if errors.Is(err, io.EOF) {
		if len(line) == 0 {
			return nil, io.EOF
		}
		err = nil
	}
	if err != nil {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) > maxModifiedLine {
		return nil, fmt.Errorf("line longer than %d bytes", maxModifiedLine)
	}
	return line, nil
}

// parseChange parses one line of modified_id.csv.
func parseChange(line []byte) (Change, error) {
	ts, id, ok := strings.Cut(string(line), ",")
	if !ok {
		return Change{}, fmt.Errorf("%q is not <time>,<id>", truncate(line))
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return Change{}, fmt.Errorf("bad time %q: %w", truncate([]byte(ts)), err)
	}
	// The root export prefixes ids with their ecosystem.
	if _, rest, ok := strings.Cut(id, "/"); ok {
		id = rest
	}
	if err := checkID(id); err != nil {
		return Change{}, err
	}
	return Change{Modified: t.UTC(), ID: id}, nil
}

// checkID accepts the ids OSV uses, which name files and URL path
// segments: no separators, no dot segments, no control characters.
func checkID(id string) error {
	if id == "" || len(id) > 256 || id == "." || id == ".." || !utf8.ValidString(id) {
		return fmt.Errorf("bad record id %q", truncate([]byte(id)))
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' || r == ',' {
			return fmt.Errorf("bad record id %q", truncate([]byte(id)))
		}
	}
	return nil
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}
