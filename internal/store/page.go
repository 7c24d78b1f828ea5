package store

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrBadCursor is returned for a page token this store did not write.
var ErrBadCursor = errors.New("invalid page token")

// MaxPageSize bounds one page of any listing.
const MaxPageSize = 1000

// Page asks for one page of a listing: at most Limit rows after the
// position Cursor names (empty for the first page).
type Page struct {
	Limit  int
	Cursor string
}

func (p Page) limit() int {
	switch {
	case p.Limit <= 0:
		return 100
	case p.Limit > MaxPageSize:
		return MaxPageSize
	}
	return p.Limit
}

// cursor is the position after the last row of a page: the sort key's
// value and the row id, which breaks ties. Sort tells a token from one
// list order apart from another's.
type cursor struct {
	Sort string `json:"s"`
	Num  int64  `json:"n,omitempty"`
	Str  string `json:"t,omitempty"`
	ID   int64  `json:"i"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, sort string) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > 4096 {
		return nil, fmt.Errorf("%w: too long", ErrBadCursor)
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCursor, err)
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCursor, err)
	}
	if c.Sort != sort {
		return nil, fmt.Errorf("%w: it belongs to a listing sorted by %q, not %q", ErrBadCursor, c.Sort, sort)
	}
	return &c, nil
}

// pageByID trims a listing read with limit+1 rows to limit and, when
// there was a row more, returns the cursor after the last one kept, for
// listings ordered by id.
func pageByID[T any](rows []T, limit int, id func(T) int64) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	return rows, cursor{Sort: "id", ID: id(rows[limit-1])}.encode()
}
