package track

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// Scan adds the processes running now, read from the proc root, so that
// processes older than the sensor have ancestry. Processes the table
// already knows from events are left as they are: events are newer. It
// returns how many processes it added. A process that exits during the
// scan is skipped; one that cannot be read is logged and skipped.
func (t *Tracker) Scan(ctx context.Context) (int, error) {
	entries, err := os.ReadDir(t.procRoot)
	if err != nil {
		return 0, fmt.Errorf("scanning processes: %w", err)
	}
	type scanned struct {
		p    *proc
		ppid uint32
	}
	var found []scanned
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("scanning processes: %w", err)
		}
		pid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || pid == 0 {
			continue
		}
		info, key, err := t.readProc(uint32(pid))
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, errGone):
			continue
		case err != nil:
			t.log.Warn("reading a process for the process table", "pid", pid, "error", err)
			continue
		}
		found = append(found, scanned{&proc{info: info, key: key}, info.PPID})
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	added := found[:0]
	for _, s := range found {
		if t.procs[s.p.info.PID] != nil {
			continue
		}
		t.insert(s.p)
		added = append(added, s)
	}
	// Parents after all are in, since /proc lists a child before its
	// parent when PIDs wrapped.
	for _, s := range added {
		if s.p.state == alive {
			t.setParent(s.p, t.procs[s.ppid])
		}
	}
	return len(added), nil
}

// errGone reports a process that exited while it was being read.
var errGone = errors.New("process exited")

// bounded keeps the per-process files read from /proc small whatever a
// process put in them.
const (
	maxStatBytes    = 4096
	maxStatusBytes  = 16 << 10
	maxCgroupBytes  = 16 << 10
	maxCmdlineBytes = wire.MaxArgBytes + wire.MaxArgs
)
