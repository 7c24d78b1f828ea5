//go:build !linux

package track

import (
	"errors"
	"time"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

var errNoProcfs = errors.New("reading processes needs Linux")

func defaultCgroupRoot() string { return "" }

func (t *Tracker) readProc(uint32) (wire.Process, ContainerKey, error) {
	return wire.Process{}, ContainerKey{}, errNoProcfs
}

func (t *Tracker) bootTime() (time.Time, error) { return time.Time{}, errNoProcfs }
