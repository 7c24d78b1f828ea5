package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// StateFileName is the file beside the database where `db update`
// remembers how far each ecosystem is synced.
const StateFileName = "sync.json"

// maxStateSize bounds sync.json; it holds one line per ecosystem.
const maxStateSize = 1 << 20

// State is the sync state of a database: for each ecosystem, the newest
// change of its export already applied. It is written only after the
// database it describes is committed, and it names that database by its
// build time, so a database replaced by other means (`db import`, a pull)
// is not mistaken for the one synced.
type State struct {
	// Source is the export base URL the ecosystems were synced from.
	Source string `json:"source"`
	// Built is the build time of the database this state describes.
	Built time.Time `json:"built"`
	// Ecosystems maps an export name ("Debian", "crates.io") to the time
	// of the newest change applied from it.
	Ecosystems map[string]time.Time `json:"ecosystems"`
}

// ReadState reads the sync state in dir. A missing file is an empty state.
func ReadState(dir string) (*State, error) {
	path := filepath.Join(dir, StateFileName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{Ecosystems: map[string]time.Time{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading sync state: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading sync state %s: %w", path, err)
	}
	if len(data) > maxStateSize {
		return nil, fmt.Errorf("sync state %s: larger than %d bytes", path, maxStateSize)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("sync state %s: %w", path, err)
	}
	if st.Ecosystems == nil {
		st.Ecosystems = map[string]time.Time{}
	}
	return &st, nil
}

// describes reports whether the state is that of a database built at
// built and synced from source.
func (st *State) describes(source string, built time.Time) bool {
	return st.Source == source && !st.Built.IsZero() && st.Built.Equal(built)
}

// writeState replaces the sync state in dir atomically.
func writeState(dir string, st *State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding sync state: %w", err)
	}
	f, err := os.CreateTemp(dir, StateFileName+".new-*")
	if err != nil {
		return fmt.Errorf("writing sync state: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, StateFileName))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing sync state: %w", err)
	}
	return nil
}

// removeState forgets the sync state in dir, before its database is
// replaced by one that was not synced here.
func removeState(dir string) error {
	if err := os.Remove(filepath.Join(dir, StateFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing sync state: %w", err)
	}
	return nil
}
