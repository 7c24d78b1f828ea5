package fallback

import (
	"encoding/binary"
	"fmt"
)

// The fanotify ABI, linux/fanotify.h.
const (
	fanMetadataLen     = 24 // struct fanotify_event_metadata
	fanMetadataVersion = 3
	fanQOverflow       = 0x4000
	fanOpenExec        = 0x1000
	fanNoFD            = -1
)

// fanEvent is one fanotify event: fd is an open descriptor of the file,
// owned by the reader, or fanNoFD.
type fanEvent struct {
	mask uint64
	fd   int32
	pid  int32
}

// parseFanotify appends the events in b, one read from a fanotify
// descriptor, to dst. On an error wrapping ErrMalformed the events before
// it are kept, so that the caller closes their descriptors.
func parseFanotify(dst []fanEvent, b []byte) ([]fanEvent, error) {
	ne := binary.NativeEndian
	for len(b) > 0 {
		if len(b) < fanMetadataLen {
			return dst, fmt.Errorf("%w: %d trailing bytes, shorter than fanotify metadata", ErrMalformed, len(b))
		}
		n := int(ne.Uint32(b))
		meta := int(ne.Uint16(b[6:]))
		if v := b[4]; v != fanMetadataVersion {
			return dst, fmt.Errorf("%w: fanotify metadata version %d, want %d", ErrMalformed, v, fanMetadataVersion)
		}
		if meta < fanMetadataLen || n < meta || n > len(b) {
			return dst, fmt.Errorf("%w: fanotify event of %d bytes, metadata %d, with %d bytes left", ErrMalformed, n, meta, len(b))
		}
		dst = append(dst, fanEvent{
			mask: ne.Uint64(b[8:]),
			fd:   int32(ne.Uint32(b[16:])),
			pid:  int32(ne.Uint32(b[20:])),
		})
		b = b[n:]
	}
	return dst, nil
}
