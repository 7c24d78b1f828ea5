package rpm

import (
	"context"
	"encoding/binary"
	"io"
)

// The parts of Berkeley DB's on-disk format (libdb 5.3, dbinc/db_page.h)
// that rpm's Packages database uses: a hash database whose keys are header
// numbers and whose values are package headers, each too large for a hash
// page and so kept in a chain of overflow pages.
const (
	bdbHashMagic = 0x00061561

	bdbPageHashUnsorted = 2 // P_HASH_UNSORTED, before Berkeley DB 4.6
	bdbPageOverflow     = 7 // P_OVERFLOW
	bdbPageHashMeta     = 8 // P_HASHMETA
	bdbPageHash         = 13

	bdbItemKeyData = 1 // H_KEYDATA: the value follows on the page
	bdbItemOffPage = 3 // H_OFFPAGE: the value is in overflow pages

	bdbPageHeaderSize = 26
	bdbOffPageSize    = 12
	bdbMinPageSize    = 512
	bdbMaxPageSize    = 64 << 10

	bdbMetaChecksum = 0x01 // DBMETA_CHKSUM
)

// ctxEveryPages is how many pages are read between checks of the context.
const ctxEveryPages = 256

// bdb reads one Berkeley DB hash database.
type bdb struct {
	r        io.ReaderAt
	order    binary.ByteOrder
	pageSize int64
	pages    int64  // pages the file holds
	used     []bool // overflow pages already read, so none is read twice
	page     []byte
	buf      []byte // the last header read from overflow pages
	p        *problems
}

// readBDB reads the package headers in a Berkeley DB Packages database.
// Rather than following hash buckets it visits every hash page in file
// order, as rpm's own read-only Berkeley DB backend does: deleted entries
// are gone from the hash pages, and the pages of a shrunk table are freed.
func readBDB(ctx context.Context, r io.ReaderAt, size int64, p *problems, fn recordFunc) error {
	meta := make([]byte, bdbMinPageSize)
	if size < int64(len(meta)) {
		return malformed("Berkeley DB file of %d bytes holds no page", size)
	}
	if _, err := r.ReadAt(meta, 0); err != nil {
		return err
	}
	db := &bdb{r: r, order: binary.LittleEndian, p: p}
	if binary.LittleEndian.Uint32(meta[12:]) != bdbHashMagic {
		db.order = binary.BigEndian
	}
	db.pageSize = int64(db.order.Uint32(meta[20:]))
	switch {
	case db.pageSize < bdbMinPageSize || db.pageSize > bdbMaxPageSize || db.pageSize&(db.pageSize-1) != 0:
		return malformed("Berkeley DB page size %d is not a power of two from 512 to 65536", db.pageSize)
	case meta[24] != 0:
		return malformed("Berkeley DB database is encrypted")
	case meta[25] != bdbPageHashMeta:
		return malformed("Berkeley DB database is not a hash database (page type %d)", meta[25])
	case meta[26]&bdbMetaChecksum != 0:
		return malformed("Berkeley DB database has page checksums, which rpm does not use")
	}
	db.pages = size / db.pageSize
	lastPage := int64(db.order.Uint32(meta[32:]))
	var truncated error
	if lastPage >= db.pages {
		// Read what there is, then say the file is cut short.
		truncated = malformed("Berkeley DB database has %d pages, the file holds %d", lastPage+1, db.pages)
	} else {
		db.pages = lastPage + 1
	}
	db.used = make([]bool, db.pages)
	db.page = make([]byte, db.pageSize)
	for pgno := int64(1); pgno < db.pages; pgno++ {
		if pgno%ctxEveryPages == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if _, err := r.ReadAt(db.page, pgno*db.pageSize); err != nil {
			return err
		}
		if t := db.page[25]; t == bdbPageHash || t == bdbPageHashUnsorted {
			if err := db.hashPage(pgno, fn); err != nil {
				return err
			}
		}
	}
	return truncated
}

// hashPage reads the key/value pairs on the hash page in db.page. Items
// are laid out from the end of the page backwards, in index order, so an
// item ends where the one before it starts.
func (db *bdb) hashPage(pgno int64, fn recordFunc) error {
	page := db.page
	entries := int64(db.order.Uint16(page[20:]))
	indexEnd := bdbPageHeaderSize + 2*entries
	if indexEnd > db.pageSize {
		db.p.add("page %d: %d entries do not fit the page", pgno, entries)
		return nil
	}
	if entries%2 != 0 {
		db.p.add("page %d: odd number of entries %d", pgno, entries)
		entries--
	}
	item := func(i int64) ([]byte, bool) {
		start := int64(db.order.Uint16(page[bdbPageHeaderSize+2*i:]))
		end := db.pageSize
		if i > 0 {
			end = int64(db.order.Uint16(page[bdbPageHeaderSize+2*(i-1):]))
		}
		if start < indexEnd || start >= end || end > db.pageSize {
			return nil, false
		}
		return page[start:end], true
	}
	// The page buffer is reused for overflow pages: values are copied
	// out of it before they are read.
	type value struct {
		id           int64
		keyData      []byte
		pgno, length uint32
	}
	var values []value
	for i := int64(0); i < entries; i += 2 {
		key, okKey := item(i)
		val, okVal := item(i + 1)
		if !okKey || !okVal {
			db.p.add("page %d: entry %d lies outside the page", pgno, i)
			continue
		}
		if key[0] != bdbItemKeyData || len(key) != 5 {
			db.p.add("page %d: entry %d: key is not a header number", pgno, i)
			continue
		}
		id := int64(db.order.Uint32(key[1:]))
		if id == 0 {
			continue // rpm's counter of header numbers, not a header
		}
		switch val[0] {
		case bdbItemKeyData:
			values = append(values, value{id: id, keyData: append([]byte(nil), val[1:]...)})
		case bdbItemOffPage:
			if len(val) < bdbOffPageSize {
				db.p.add("record %d: overflow reference of %d bytes", id, len(val))
				continue
			}
			values = append(values, value{id: id, pgno: db.order.Uint32(val[4:]), length: db.order.Uint32(val[8:])})
		default:
			db.p.add("record %d: unsupported hash item type %d", id, val[0])
		}
	}
	for _, v := range values {
		if v.keyData != nil {
			fn(v.id, v.keyData)
			continue
		}
		b, err := db.overflow(v.pgno, v.length)
		if err != nil {
			return err
		}
		if b == nil {
			continue
		}
		fn(v.id, b)
	}
	return nil
}

// overflow reads a value kept in a chain of overflow pages. It returns
// nil for a broken chain, reported to db.p, and an error only when the
// file cannot be read.
func (db *bdb) overflow(pgno, length uint32) ([]byte, error) {
	if length > MaxHeaderSize {
		db.p.add("overflow page %d: header of %d bytes, limit %d", pgno, length, MaxHeaderSize)
		return nil, nil
	}
	if int64(length) > db.pages*db.pageSize {
		db.p.add("overflow page %d: header of %d bytes is larger than the database", pgno, length)
		return nil, nil
	}
	// The buffer is reused: headers are parsed before the next is read.
	if cap(db.buf) < int(length) {
		db.buf = make([]byte, 0, length)
	}
	buf := db.buf[:0]
	for p := int64(pgno); p != 0; {
		if p >= db.pages {
			db.p.add("overflow page %d is past the end of the database", p)
			return nil, nil
		}
		if db.used[p] {
			db.p.add("overflow page %d is used twice", p)
			return nil, nil
		}
		db.used[p] = true
		if _, err := db.r.ReadAt(db.page, p*db.pageSize); err != nil {
			return nil, err
		}
		if t := db.page[25]; t != bdbPageOverflow {
			db.p.add("page %d: type %d, want an overflow page", p, t)
			return nil, nil
		}
		// An overflow page's hf_offset field is the length of the data
		// on it (OV_LEN).
		n := int(db.order.Uint16(db.page[22:]))
		if n == 0 || bdbPageHeaderSize+int64(n) > db.pageSize || len(buf)+n > int(length) {
			db.p.add("overflow page %d: %d bytes do not fit", p, n)
			return nil, nil
		}
		buf = append(buf, db.page[bdbPageHeaderSize:bdbPageHeaderSize+n]...)
		p = int64(db.order.Uint32(db.page[16:]))
	}
	if len(buf) != int(length) {
		db.p.add("overflow page %d: chain holds %d bytes, want %d", pgno, len(buf), length)
		return nil, nil
	}
	return buf, nil
}
