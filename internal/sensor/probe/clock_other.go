//go:build !linux

package probe

// monotonicNow is 0 where there is no sensor: Decode then reads
// timestamps as nanoseconds since the wall-clock epoch.
func monotonicNow() int64 { return 0 }
