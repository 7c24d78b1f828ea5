package rpm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
	"modernc.org/sqlite/vfs"
)

// sqliteName is the name the database has in the VFS it is read through.
const sqliteName = "rpmdb.sqlite"

// readSQLite reads the package headers in an rpmdb.sqlite: the blob
// column of its Packages table, keyed by hnum.
//
// The database is opened through a read-only VFS over r, with
// immutable=1: SQLite then neither locks nor looks for a journal or WAL
// file, which rpm leaves next to the database in WAL mode and a scan does
// not have. What the WAL held and rpm had not checkpointed is missed, as
// it is by every reader of a copied database.
func readSQLite(ctx context.Context, r io.ReaderAt, size int64, p *problems, fn recordFunc) (err error) {
	fsys := &readerFS{r: r, size: size}
	name, v, err := vfs.New(fsys)
	if err != nil {
		return fmt.Errorf("opening SQLite database: %w", err)
	}
	defer func() {
		if cerr := v.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing SQLite database: %w", cerr)
		}
	}()
	db, err := sql.Open("sqlite", "file:"+sqliteName+"?vfs="+name+"&mode=ro&immutable=1")
	if err != nil {
		return fmt.Errorf("opening SQLite database: %w", err)
	}
	defer db.Close()
	err = querySQLite(ctx, db, size, p, fn)
	if rerr := fsys.readErr(); rerr != nil {
		// SQLite only says "disk I/O error"; the reader says what failed.
		return rerr
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, ErrMalformed) {
		return malformed("%v", err)
	}
	return err
}

func querySQLite(ctx context.Context, db *sql.DB, size int64, p *problems, fn recordFunc) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A value longer than any header is refused by SQLite itself, so that
	// a crafted table cannot make it build one in memory.
	if _, err := sqlite.Limit(conn, sqlite3.SQLITE_LIMIT_LENGTH, MaxHeaderSize); err != nil {
		return err
	}
	// SQLite's advice for reading files from untrusted sources.
	for _, pragma := range []string{"PRAGMA trusted_schema = OFF", "PRAGMA cell_size_check = ON", "PRAGMA mmap_size = 0"} {
		if _, err := conn.ExecContext(ctx, pragma); err != nil {
			return err
		}
	}
	// Packages must be a table: a view can compute rows without end.
	var typ, schema sql.NullString
	err = conn.QueryRowContext(ctx, "SELECT type, sql FROM sqlite_master WHERE name = 'Packages' COLLATE NOCASE").Scan(&typ, &schema)
	if errors.Is(err, sql.ErrNoRows) {
		return malformed("SQLite database has no Packages table")
	}
	if err != nil {
		return err
	}
	if typ.String != "table" || strings.HasPrefix(strings.ToUpper(schema.String), "CREATE VIRTUAL") {
		return malformed("SQLite database's Packages is not a table")
	}
	rows, err := conn.QueryContext(ctx, "SELECT hnum, blob FROM Packages")
	if err != nil {
		return err
	}
	defer rows.Close()
	// Real headers are stored in the file, so together they are no
	// larger than it; generated columns could make them so.
	var total int64
	for rows.Next() {
		var (
			id   sql.NullInt64
			blob sql.RawBytes
		)
		if err := rows.Scan(&id, &blob); err != nil {
			p.add("row: %v", err)
			continue
		}
		if total += int64(len(blob)); total > size {
			return malformed("SQLite Packages table holds more than the file")
		}
		fn(id.Int64, blob)
	}
	return rows.Err()
}

// readerFS is a file system holding one file, the database, read from an
// io.ReaderAt. It keeps the first read error, which SQLite reports only
// as an I/O error.
type readerFS struct {
	r    io.ReaderAt
	size int64

	mu  sync.Mutex
	err error
}

// Open implements fs.FS.
func (f *readerFS) Open(name string) (fs.File, error) {
	if name != sqliteName {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &readerFile{SectionReader: io.NewSectionReader(f.r, 0, f.size), fs: f}, nil
}

func (f *readerFS) readErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

type readerFile struct {
	*io.SectionReader
	fs *readerFS
}

func (f *readerFile) Read(b []byte) (int, error) {
	n, err := f.SectionReader.Read(b)
	if err != nil && !errors.Is(err, io.EOF) {
		f.fs.mu.Lock()
		if f.fs.err == nil {
			f.fs.err = err
		}
		f.fs.mu.Unlock()
	}
	return n, err
}

func (f *readerFile) Stat() (fs.FileInfo, error) { return fileInfo{size: f.Size()}, nil }
func (f *readerFile) Close() error               { return nil }

type fileInfo struct{ size int64 }

func (fi fileInfo) Name() string       { return sqliteName }
func (fi fileInfo) Size() int64        { return fi.size }
func (fi fileInfo) Mode() fs.FileMode  { return 0o444 }
func (fi fileInfo) ModTime() time.Time { return time.Time{} }
func (fi fileInfo) IsDir() bool        { return false }
func (fi fileInfo) Sys() any           { return nil }
