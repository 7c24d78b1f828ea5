//go:build !linux

package fallback

import (
	"context"
	"errors"
	"fmt"

	"github.com/bulwarkhq/bulwark/internal/sensor/probe"
)

// Source is the fallback event source; it exists only on Linux.
type Source struct{}

// Open fails with errors.ErrUnsupported: the proc connector and fanotify
// are Linux interfaces.
func Open(Options) (*Source, error) {
	return nil, fmt.Errorf("the fallback sensor needs Linux: %w", errors.ErrUnsupported)
}

// Hooks returns nothing: nothing attaches outside Linux.
func (s *Source) Hooks() []string { return nil }

// Read fails with errors.ErrUnsupported.
func (s *Source) Read(context.Context) (probe.Event, error) {
	return probe.Event{}, errors.ErrUnsupported
}

// Drops fails with errors.ErrUnsupported.
func (s *Source) Drops() (uint64, error) { return 0, errors.ErrUnsupported }

// Incomplete returns 0: no events are read outside Linux.
func (s *Source) Incomplete() uint64 { return 0 }

// Close does nothing.
func (s *Source) Close() error { return nil }
