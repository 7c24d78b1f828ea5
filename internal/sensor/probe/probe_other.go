//go:build !linux

package probe

import (
	"context"
	"errors"
	"fmt"
)

// Probe is the loaded and attached sensor; it exists only on Linux.
type Probe struct{}

// Open fails with errors.ErrUnsupported: eBPF is Linux-only.
func Open(Options) (*Probe, error) {
	return nil, fmt.Errorf("the eBPF sensor needs Linux: %w", errors.ErrUnsupported)
}

// Hooks returns nothing: no hook attaches outside Linux.
func (p *Probe) Hooks() []string { return nil }

// Read fails with errors.ErrUnsupported.
func (p *Probe) Read(context.Context) (Event, error) { return Event{}, errors.ErrUnsupported }

// Drops fails with errors.ErrUnsupported.
func (p *Probe) Drops() (uint64, error) { return 0, errors.ErrUnsupported }

// Close does nothing.
func (p *Probe) Close() error { return nil }
