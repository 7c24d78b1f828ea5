package rpm

import (
	"context"
	"encoding/binary"
	"io"
)

// The parts of rpm's own NDB format (lib/backend/ndb/rpmpkg.c) that hold
// the package headers. All numbers are little-endian. The file starts
// with slot pages of 4 KiB: a 32-byte header where the first two slots
// would be, then slots of 16 bytes (magic, package index, offset and
// length in 16-byte blocks). A used slot points at a blob: a 16-byte
// blob header (magic, package index, generation, length), the package
// header, and a tail at the end of its last block.
const (
	ndbMagic     = 'R' | 'p'<<8 | 'm'<<16 | 'P'<<24
	ndbSlotMagic = 'S' | 'l'<<8 | 'o'<<16 | 't'<<24
	ndbBlobMagic = 'B' | 'l'<<8 | 'b'<<16 | 'S'<<24

	ndbHeaderSize     = 32
	ndbSlotPageSize   = 4096
	ndbSlotSize       = 16
	ndbBlockSize      = 16
	ndbBlobHeaderSize = 16
	ndbBlobTailSize   = 12
	ndbVersion        = 0
)

// ctxEverySlots is how many slots are read between checks of the context.
const ctxEverySlots = 4096

// readNDB reads the package headers in an NDB Packages.db, in slot order.
func readNDB(ctx context.Context, r io.ReaderAt, size int64, p *problems, fn recordFunc) error {
	if size < ndbSlotPageSize {
		return malformed("NDB file of %d bytes is shorter than a slot page", size)
	}
	page := make([]byte, ndbSlotPageSize)
	if _, err := r.ReadAt(page, 0); err != nil {
		return err
	}
	if v := binary.LittleEndian.Uint32(page[4:]); v != ndbVersion {
		return malformed("NDB version %d is not supported", v)
	}
	slotPages := int64(binary.LittleEndian.Uint32(page[12:]))
	slotsEnd := slotPages * ndbSlotPageSize
	if slotPages == 0 || slotsEnd > size {
		return malformed("NDB database has %d slot pages, the file holds %d", slotPages, size/ndbSlotPageSize)
	}
	// Blobs do not overlap in a sound database. Refusing those that do
	// keeps a crafted file whose slots all point at one blob from making
	// as many packages, and bounds the bytes read to the file's size.
	used := make([]uint64, (size/ndbBlockSize+63)/64)
	var blob []byte
	slot := int64(ndbHeaderSize / ndbSlotSize)
	for pg := int64(0); pg < slotPages; pg++ {
		if pg > 0 {
			if _, err := r.ReadAt(page, pg*ndbSlotPageSize); err != nil {
				return err
			}
		}
		for ; slot < ndbSlotPageSize/ndbSlotSize; slot++ {
			if slot%ctxEverySlots == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			s := page[slot*ndbSlotSize:]
			n := pg*ndbSlotPageSize/ndbSlotSize + slot
			if binary.LittleEndian.Uint32(s) != ndbSlotMagic {
				p.add("slot %d: bad magic number", n)
				continue
			}
			id := int64(binary.LittleEndian.Uint32(s[4:]))
			if id == 0 {
				continue // a free slot
			}
			off := int64(binary.LittleEndian.Uint32(s[8:])) * ndbBlockSize
			length := int64(binary.LittleEndian.Uint32(s[12:])) * ndbBlockSize
			if off < slotsEnd || length < ndbBlobHeaderSize+ndbBlobTailSize || off+length > size {
				p.add("record %d: blob of %d bytes at %d lies outside the file's blob area", id, length, off)
				continue
			}
			if !markBlocks(used, off/ndbBlockSize, length/ndbBlockSize) {
				p.add("record %d: blob at %d overlaps another", id, off)
				continue
			}
			var err error
			if blob, err = readNDBBlob(r, id, off, length, blob, p); err != nil {
				return err
			}
			if blob != nil {
				fn(id, blob)
			}
		}
		slot = 0
	}
	return nil
}

// readNDBBlob reads the package header in the blob at off, reusing buf.
// It returns nil for a broken blob, reported to p, and an error only when
// the file cannot be read.
func readNDBBlob(r io.ReaderAt, id, off, length int64, buf []byte, p *problems) ([]byte, error) {
	var h [ndbBlobHeaderSize]byte
	if _, err := r.ReadAt(h[:], off); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(h[:]) != ndbBlobMagic {
		p.add("record %d: bad blob magic number", id)
		return nil, nil
	}
	if got := int64(binary.LittleEndian.Uint32(h[4:])); got != id {
		p.add("record %d: blob belongs to record %d", id, got)
		return nil, nil
	}
	n := int64(binary.LittleEndian.Uint32(h[12:]))
	if n > MaxHeaderSize {
		p.add("record %d: header of %d bytes, limit %d", id, n, MaxHeaderSize)
		return nil, nil
	}
	if ndbBlobHeaderSize+n+ndbBlobTailSize > length {
		p.add("record %d: header of %d bytes overflows its %d-byte blob", id, n, length)
		return nil, nil
	}
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := r.ReadAt(buf, off+ndbBlobHeaderSize); err != nil {
		return nil, err
	}
	return buf, nil
}

// markBlocks marks n blocks from first as used, or reports false when one
// of them already is, marking none.
func markBlocks(used []uint64, first, n int64) bool {
	for b := first; b < first+n; b++ {
		if used[b/64]&(1<<(b%64)) != 0 {
			return false
		}
	}
	for b := first; b < first+n; b++ {
		used[b/64] |= 1 << (b % 64)
	}
	return true
}
