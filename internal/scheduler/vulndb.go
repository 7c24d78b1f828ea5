package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/vulndb"
)

// openDB is one opened database file. Scans hold a reference while they
// run, so an update can swap in a new file without closing the old one
// under them.
type openDB struct {
	db    *vulndb.DB
	built time.Time
	// size and mtime identify the file, to notice it was replaced.
	size  int64
	mtime time.Time
	users sync.WaitGroup
}

func openDatabase(dir string) (*openDB, error) {
	fi, err := os.Stat(filepath.Join(dir, vulndb.FileName))
	if err != nil {
		return nil, fmt.Errorf("opening vulnerability database in %s: %w", dir, err)
	}
	db, err := vulndb.Open(dir)
	if err != nil {
		return nil, err
	}
	st, err := db.Status()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("reading vulnerability database in %s: %w", dir, err)
	}
	return &openDB{db: db, built: st.Built, size: fi.Size(), mtime: fi.ModTime()}, nil
}

func (d *openDB) close() error {
	d.users.Wait()
	return d.db.Close()
}

// acquire returns the database in use; call release when done with it.
func (s *Scheduler) acquire() (*openDB, error) {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.db == nil {
		return nil, errors.New("vulnerability database is closed")
	}
	s.db.users.Add(1)
	return s.db, nil
}

func (d *openDB) release() { d.users.Done() }

// hasDB reports whether a database is open; workers claim no scans
// before one is.
func (s *Scheduler) hasDB() bool {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	return s.db != nil
}

// watchDB reopens the database when its file changes, and queues
// re-matches of every scanned image when it is newer than the one the
// store last saw.
func (s *Scheduler) watchDB(ctx context.Context) {
	for sleep(ctx, 5*s.o.Tick, nil) {
		changed, err := s.reloadDB()
		if err != nil {
			s.log.Warn("reloading vulnerability database", "dir", s.o.DBDir, "err", err)
			continue
		}
		if !changed {
			continue
		}
		if err := s.checkDBBuilt(ctx); err != nil {
			s.log.Warn("comparing database build time", "err", err)
		}
	}
}

// reloadDB opens the database file anew if it changed since it was
// opened; the old one is closed once the scans using it finish.
func (s *Scheduler) reloadDB() (bool, error) {
	fi, err := os.Stat(filepath.Join(s.o.DBDir, vulndb.FileName))
	if errors.Is(err, fs.ErrNotExist) && !s.hasDB() {
		return false, nil // still waiting for the first database
	}
	if err != nil {
		return false, fmt.Errorf("checking vulnerability database: %w", err)
	}
	s.dbMu.RLock()
	cur := s.db
	s.dbMu.RUnlock()
	if cur != nil && fi.Size() == cur.size && fi.ModTime().Equal(cur.mtime) {
		return false, nil
	}
	next, err := openDatabase(s.o.DBDir)
	if err != nil {
		return false, err
	}
	s.dbMu.Lock()
	old := s.db
	s.db = next
	s.dbMu.Unlock()
	if old != nil {
		go func() {
			if err := old.close(); err != nil {
				s.log.Warn("closing replaced vulnerability database", "err", err)
			}
		}()
	}
	s.m.dbBuilt.Set(float64(next.built.Unix()))
	s.log.Info("vulnerability database reloaded", "built", next.built)
	return true, nil
}

// checkDBBuilt queues re-matches when the database in use is newer than
// the one recorded in the store. The compare-and-set makes one replica
// win; the others see the new value and do nothing.
func (s *Scheduler) checkDBBuilt(ctx context.Context) error {
	built := s.DBBuilt().UTC()
	if built.IsZero() {
		return nil
	}
	old, err := s.store.Setting(ctx, settingDBBuilt)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if old != "" {
		if prev, err := time.Parse(time.RFC3339Nano, old); err == nil && !prev.Before(built) {
			return nil
		}
	}
	won, err := s.store.CompareAndSetSetting(ctx, settingDBBuilt, old, built.Format(time.RFC3339Nano))
	if err != nil || !won || old == "" {
		// A first start has nothing matched against an older database.
		return err
	}
	n, err := s.Rematch(ctx, "db-update")
	if err != nil {
		return err
	}
	s.log.Info("vulnerability database updated: re-matching scanned images", "built", built, "queued", n)
	return nil
}
