// Package textdb reads the line-oriented package databases of Linux
// distributions (dpkg's status, apk's installed) with bounded line lengths,
// and collects what is malformed in them so an extractor can return the
// good entries together with one error that names the bad lines.
package textdb

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/extract"
)

// Reader reads lines of bounded length.
type Reader struct {
	r   *bufio.Reader
	max int
	n   int // number of the line last returned
	buf []byte
}

// NewReader reads lines of at most max bytes from r.
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Line is the number of the line Next last returned, from 1.
func (lr *Reader) Line() int { return lr.n }

// Next returns the next line without its "\n" or "\r\n", valid until the
// following call. A line longer than max bytes is consumed and reported as
// tooLong instead of returned. At the end of the input it returns io.EOF.
func (lr *Reader) Next() (line []byte, tooLong bool, err error) {
	lr.buf = lr.buf[:0]
	read := false
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if len(chunk) > 0 {
			read = true
		}
		if err == nil && len(lr.buf) == 0 && !tooLong && len(chunk) <= lr.max+1 {
			// The common case: the whole line sits in the buffer.
			lr.n++
			return trimEOL(chunk), false, nil
		}
		if !tooLong {
			if len(lr.buf)+len(chunk) > lr.max+1 {
				tooLong = true
				lr.buf = lr.buf[:0]
			} else {
				lr.buf = append(lr.buf, chunk...)
			}
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && !read:
			return nil, false, io.EOF
		case err != nil && err != io.EOF:
			return nil, false, err
		}
		lr.n++
		if tooLong {
			return nil, true, nil
		}
		return trimEOL(lr.buf), false, nil
	}
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// maxProblems bounds how many problems one error spells out.
const maxProblems = 10

// Problems collects what is wrong with a file, keeping the first few.
type Problems struct {
	// Path names the file in the error; Kind is the sentinel the error
	// wraps.
	Path  string
	Kind  error
	msgs  []string
	count int
}

// Add records a problem at a line.
func (p *Problems) Add(line int, format string, args ...any) {
	p.count++
	if len(p.msgs) < maxProblems {
		p.msgs = append(p.msgs, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
	}
}

// Err returns nil when nothing was wrong, otherwise one error wrapping
// Kind and extract.ErrMalformed that names the file and the first problems' lines.
func (p *Problems) Err() error {
	if p.count == 0 {
		return nil
	}
	msg := strings.Join(p.msgs, "; ")
	if more := p.count - len(p.msgs); more > 0 {
		msg += fmt.Sprintf("; and %d more", more)
	}
	return &malformedError{msg: fmt.Sprintf("%s: %v: %s", p.Path, p.Kind, msg), kind: p.Kind}
}

// malformedError is both the extractor's own kind of error and
// extract.ErrMalformed, so a scan can count malformed input of every
// extractor alike.
type malformedError struct {
	msg  string
	kind error
}

func (e *malformedError) Error() string   { return e.msg }
func (e *malformedError) Unwrap() []error { return []error{e.kind, extract.ErrMalformed} }
