package probe

import "log/slog"

// Options configure Open.
type Options struct {
	// Logger receives which hooks were attached and which were not;
	// slog.Default() when nil.
	Logger *slog.Logger
	// RingSize is the ring buffer size in bytes: a power of two and a
	// multiple of the page size. 0 means DefaultRingSize.
	RingSize int
}

// DefaultRingSize holds about 600 short-lived processes (an exec record
// takes 1,440 bytes of the ring, a fork or exit 160), a burst of a few
// hundred milliseconds on a busy node.
const DefaultRingSize = 1 << 20
