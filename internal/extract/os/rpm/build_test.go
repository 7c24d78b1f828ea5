package rpm

import (
	"database/sql"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// This file builds small databases for the hostile and fuzz tests, which
// need to break them in precise ways. What they read is checked against
// the real databases in testdata.

// tagValue is one entry of a package header.
type tagValue struct {
	tag, typ, count uint32
	data            []byte
}

func stringTag(tag uint32, s string) tagValue {
	return tagValue{tag: tag, typ: typeString, count: 1, data: append([]byte(s), 0)}
}

func int32Tag(tag, v uint32) tagValue {
	return tagValue{tag: tag, typ: typeInt32, count: 1, data: binary.BigEndian.AppendUint32(nil, v)}
}

// makeHeader lays out a package header blob as rpm does: the index, then
// the data store with INT32 values aligned to 4 bytes.
func makeHeader(tags ...tagValue) []byte {
	var index, data []byte
	for _, t := range tags {
		if t.typ == typeInt32 {
			for len(data)%4 != 0 {
				data = append(data, 0)
			}
		}
		index = binary.BigEndian.AppendUint32(index, t.tag)
		index = binary.BigEndian.AppendUint32(index, t.typ)
		index = binary.BigEndian.AppendUint32(index, uint32(len(data)))
		index = binary.BigEndian.AppendUint32(index, t.count)
		data = append(data, t.data...)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(len(tags)))
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(append(b, index...), data...)
}

// pkgHeader is the header of an x86_64 package built from a source RPM of
// the same name and version.
func pkgHeader(name, version, release string, epoch uint32) []byte {
	tags := []tagValue{
		stringTag(tagName, name),
		stringTag(tagVersion, version),
		stringTag(tagRelease, release),
		stringTag(tagArch, "x86_64"),
		stringTag(tagSourceRPM, name+"-"+version+"-"+release+".src.rpm"),
	}
	if epoch != 0 {
		tags = append(tags, int32Tag(tagEpoch, epoch))
	}
	return makeHeader(tags...)
}

// makeBDB builds a Berkeley DB hash database as rpm's Packages: a
// metadata page, one hash page with a key/value pair per header (header
// number i+1), and each header in a chain of overflow pages.
func makeBDB(order binary.ByteOrder, pageSize int, headers ...[]byte) []byte {
	page := func(pgno, next uint32, entries, hfOffset uint16, typ byte) []byte {
		p := make([]byte, pageSize)
		order.PutUint32(p[8:], pgno)
		order.PutUint32(p[16:], next)
		order.PutUint16(p[20:], entries)
		order.PutUint16(p[22:], hfOffset)
		p[25] = typ
		return p
	}
	meta := page(0, 0, 0, 0, bdbPageHashMeta)
	order.PutUint32(meta[12:], bdbHashMagic)
	order.PutUint32(meta[16:], 9)
	order.PutUint32(meta[20:], uint32(pageSize))
	hash := page(1, 0, uint16(2*len(headers)), 0, bdbPageHash)
	pages := [][]byte{meta, hash}
	end := pageSize
	for i, h := range headers {
		first := uint32(len(pages))
		for chunk := h; len(chunk) > 0; {
			n := min(len(chunk), pageSize-bdbPageHeaderSize)
			next := uint32(len(pages) + 1)
			if n == len(chunk) {
				next = 0
			}
			ov := page(uint32(len(pages)), next, 1, uint16(n), bdbPageOverflow)
			copy(ov[bdbPageHeaderSize:], chunk[:n])
			pages = append(pages, ov)
			chunk = chunk[n:]
		}
		key := make([]byte, 5)
		key[0] = bdbItemKeyData
		order.PutUint32(key[1:], uint32(i+1))
		val := make([]byte, bdbOffPageSize)
		val[0] = bdbItemOffPage
		order.PutUint32(val[4:], first)
		order.PutUint32(val[8:], uint32(len(h)))
		for j, item := range [][]byte{key, val} {
			end -= len(item)
			copy(hash[end:], item)
			order.PutUint16(hash[bdbPageHeaderSize+2*(2*i+j):], uint16(end))
		}
	}
	order.PutUint32(meta[32:], uint32(len(pages)-1))
	var b []byte
	for _, p := range pages {
		b = append(b, p...)
	}
	return b
}

// makeNDB builds an NDB Packages.db with one slot page and a blob per
// header (package index i+1).
func makeNDB(headers ...[]byte) []byte {
	le := binary.LittleEndian
	b := make([]byte, ndbSlotPageSize)
	le.PutUint32(b, ndbMagic)
	le.PutUint32(b[8:], 1)  // generation
	le.PutUint32(b[12:], 1) // slot pages
	for s := ndbHeaderSize / ndbSlotSize; s < ndbSlotPageSize/ndbSlotSize; s++ {
		le.PutUint32(b[s*ndbSlotSize:], ndbSlotMagic)
	}
	for i, h := range headers {
		off := len(b)
		blocks := (ndbBlobHeaderSize + len(h) + ndbBlobTailSize + ndbBlockSize - 1) / ndbBlockSize
		blob := make([]byte, blocks*ndbBlockSize)
		le.PutUint32(blob, ndbBlobMagic)
		le.PutUint32(blob[4:], uint32(i+1))
		le.PutUint32(blob[8:], 1)
		le.PutUint32(blob[12:], uint32(len(h)))
		copy(blob[ndbBlobHeaderSize:], h)
		tail := blob[len(blob)-ndbBlobTailSize:]
		le.PutUint32(tail[4:], uint32(len(h)))
		le.PutUint32(tail[8:], 'B'|'l'<<8|'b'<<16|'E'<<24)
		b = append(b, blob...)
		s := b[(ndbHeaderSize/ndbSlotSize+i)*ndbSlotSize:]
		le.PutUint32(s[4:], uint32(i+1))
		le.PutUint32(s[8:], uint32(off/ndbBlockSize))
		le.PutUint32(s[12:], uint32(blocks))
	}
	return b
}

// makeSQLite builds an rpmdb.sqlite with rpm's Packages table, or with
// the schema given, and runs stmts on it.
func makeSQLite(tb testing.TB, schema string, headers [][]byte, stmts ...string) []byte {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "rpmdb.sqlite")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if schema == "" {
		schema = "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"
	}
	if _, err := db.Exec(schema); err != nil {
		tb.Fatal(err)
	}
	for _, h := range headers {
		if _, err := db.Exec("INSERT INTO Packages (blob) VALUES (?)", h); err != nil {
			tb.Fatal(err)
		}
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			tb.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
