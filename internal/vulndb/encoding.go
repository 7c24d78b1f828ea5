package vulndb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/bulwarkhq/bulwark/internal/model"
)

// Index entries are read on every lookup, so they use a compact binary
// form rather than JSON: the ranges and versions first (all a lookup needs
// to decide), then the id and severity (decoded only for a hit).
//
//	entry    = version:u8 nRanges:uvarint range* nVersions:uvarint str* id:str severity
//	range    = type:str nEvents:uvarint event*
//	event    = kind:u8 version:str          (kind: 'i' introduced, 'f' fixed, 'l' last_affected)
//	severity = rating:str score:f64 vector:str source:str
//	str      = len:uvarint bytes
const entryEncoding = 1

var errCorruptEntry = errors.New("corrupt index entry")

func encodeEntry(e *entry) []byte {
	b := []byte{entryEncoding}
	b = binary.AppendUvarint(b, uint64(len(e.Ranges)))
	for _, r := range e.Ranges {
		b = appendString(b, r.Type)
		n := 0
		for _, ev := range r.Events {
			if ev.Limit == "" {
				n++
			}
		}
		b = binary.AppendUvarint(b, uint64(n))
		for _, ev := range r.Events {
			switch {
			case ev.Introduced != "":
				b = appendString(append(b, 'i'), ev.Introduced)
			case ev.Fixed != "":
				b = appendString(append(b, 'f'), ev.Fixed)
			case ev.LastAffected != "":
				b = appendString(append(b, 'l'), ev.LastAffected)
			}
		}
	}
	b = binary.AppendUvarint(b, uint64(len(e.Versions)))
	for _, v := range e.Versions {
		b = appendString(b, v)
	}
	b = appendString(b, e.ID)
	b = appendString(b, string(e.Severity.Rating))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(e.Severity.Score))
	b = appendString(b, e.Severity.Vector)
	return appendString(b, e.Severity.Source)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// entryReader decodes an entry in two steps: decodeMatch reads what a
// lookup needs, decodeRest the id and severity.
type entryReader struct {
	b   []byte
	err error
}

func (r *entryReader) uvarint() int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(len(r.b)) {
		r.err = errCorruptEntry
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *entryReader) string() string {
	n := r.uvarint()
	if r.err != nil || n > len(r.b) {
		r.err = errCorruptEntry
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *entryReader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errCorruptEntry
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// decodeMatch reads the ranges and versions of an entry.
func (r *entryReader) decodeMatch(e *entry) error {
	if v := r.byte(); r.err == nil && v != entryEncoding {
		return fmt.Errorf("%w: encoding %d", errCorruptEntry, v)
	}
	e.Ranges = make([]Range, r.uvarint())
	for i := range e.Ranges {
		rg := &e.Ranges[i]
		rg.Type = r.string()
		rg.Events = make([]Event, r.uvarint())
		for j := range rg.Events {
			kind, v := r.byte(), r.string()
			switch kind {
			case 'i':
				rg.Events[j].Introduced = v
			case 'f':
				rg.Events[j].Fixed = v
			case 'l':
				rg.Events[j].LastAffected = v
			default:
				r.err = errCorruptEntry
			}
		}
		if r.err != nil {
			return r.err
		}
	}
	e.Versions = make([]string, r.uvarint())
	for i := range e.Versions {
		e.Versions[i] = r.string()
	}
	return r.err
}

// decodeRest reads the id and severity, after decodeMatch.
func (r *entryReader) decodeRest(e *entry) error {
	e.ID = r.string()
	e.Severity.Rating = model.Severity(r.string())
	if r.err == nil && len(r.b) < 8 {
		r.err = errCorruptEntry
	}
	if r.err != nil {
		return r.err
	}
	e.Severity.Score = math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	e.Severity.Vector = r.string()
	e.Severity.Source = r.string()
	return r.err
}

func decodeEntry(b []byte) (entry, error) {
	var e entry
	r := entryReader{b: b}
	if err := r.decodeMatch(&e); err != nil {
		return e, err
	}
	err := r.decodeRest(&e)
	return e, err
}
