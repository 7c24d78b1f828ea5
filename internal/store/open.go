package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations
var migrations embed.FS

// DB is the store over one SQL database.
type DB struct {
	sql     *sql.DB
	dialect dialect
	now     func() time.Time
}

type dialect struct {
	name string
	// dollar placeholders ($1) instead of ?.
	dollar bool
	// skipLocked adds FOR UPDATE SKIP LOCKED to queue claims.
	skipLocked bool
	// jsonElements spells, for a JSON list column (the %s), a table e of
	// its string elements in a column value.
	jsonElements string
}

var (
	sqliteDialect   = dialect{name: "sqlite", jsonElements: `json_each(%s) AS e`}
	postgresDialect = dialect{name: "postgres", dollar: true, skipLocked: true, jsonElements: `json_array_elements_text(%s::json) AS e(value)`}
)

// SQLiteFile is the database file's name under the data directory.
const SQLiteFile = "bulwark.db"

// Open opens the database the server was given: a postgres:// URL, or
// when database is empty the SQLite file under dataDir. Migrations run
// before it returns.
func Open(ctx context.Context, database, dataDir string, logger *slog.Logger) (*DB, error) {
	if database == "" {
		if dataDir == "" {
			return nil, errors.New("opening the store: neither a database URL nor a data directory was given")
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("creating data directory: %w", err)
		}
		return OpenSQLite(ctx, filepath.Join(dataDir, SQLiteFile), logger)
	}
	if strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://") {
		return OpenPostgres(ctx, database, logger)
	}
	if rest, ok := strings.CutPrefix(database, "sqlite://"); ok {
		return OpenSQLite(ctx, rest, logger)
	}
	return nil, fmt.Errorf("opening the store: unsupported database URL %q (want postgres://… or sqlite://PATH)", redactURL(database))
}

// OpenSQLite opens (creating if needed) an SQLite database file in WAL
// mode and migrates it.
func OpenSQLite(ctx context.Context, path string, logger *slog.Logger) (*DB, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("opening SQLite database %s: %w", path, err)
	}
	// Writers queue on SQLite's lock anyway; a few connections let
	// readers run beside one writer under WAL.
	db.SetMaxOpenConns(8)
	s := &DB{sql: db, dialect: sqliteDialect, now: time.Now}
	if err := s.migrate(ctx, goose.DialectSQLite3, logger); err != nil {
		db.Close()
		return nil, fmt.Errorf("SQLite database %s: %w", path, err)
	}
	return s, nil
}

// OpenPostgres connects to PostgreSQL and migrates the database; several
// servers may start at once (migrations take an advisory lock).
func OpenPostgres(ctx context.Context, dsn string, logger *slog.Logger) (*DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening PostgreSQL database %s: %w", redactURL(dsn), err)
	}
	db.SetMaxOpenConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &DB{sql: db, dialect: postgresDialect, now: time.Now}
	if err := s.migrate(ctx, goose.DialectPostgres, logger); err != nil {
		db.Close()
		return nil, fmt.Errorf("PostgreSQL database %s: %w", redactURL(dsn), err)
	}
	return s, nil
}

func (s *DB) migrate(ctx context.Context, d goose.Dialect, logger *slog.Logger) error {
	if err := s.sql.PingContext(ctx); err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	fsys, err := fs.Sub(migrations, "migrations/"+s.dialect.name)
	if err != nil {
		return fmt.Errorf("finding migrations: %w", err)
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if d == goose.DialectPostgres {
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return fmt.Errorf("creating migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(d, s.sql, fsys, opts...)
	if err != nil {
		return fmt.Errorf("preparing migrations: %w", err)
	}
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	if logger != nil {
		for _, r := range results {
			logger.Info("applied migration", "source", r.Source.Path, "duration", r.Duration)
		}
	}
	return nil
}

// Dialect names the database: "sqlite" or "postgres".
func (s *DB) Dialect() string { return s.dialect.name }

// Ping checks the database answers; /readyz uses it.
func (s *DB) Ping(ctx context.Context) error {
	if err := s.sql.PingContext(ctx); err != nil {
		return fmt.Errorf("pinging the %s store: %w", s.dialect.name, err)
	}
	return nil
}

// Close closes the database.
func (s *DB) Close() error { return s.sql.Close() }

// SetClock replaces the clock; tests use it to make time pass.
func (s *DB) SetClock(now func() time.Time) { s.now = now }

// q rewrites ? placeholders for the dialect. Queries in this package
// never contain ? inside string literals.
func (s *DB) q(query string) string {
	if !s.dialect.dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func (s *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.sql.ExecContext(ctx, s.q(query), args...)
}

func (s *DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.sql.QueryContext(ctx, s.q(query), args...)
}

func (s *DB) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.sql.QueryRowContext(ctx, s.q(query), args...)
}

// tx runs fn in a transaction, committing when it returns nil.
func (s *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

// isUnique reports whether err is a uniqueness violation in either
// database.
func isUnique(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		return lite.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || lite.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Times are stored as Unix milliseconds; zero time is NULL where a column
// may be empty.
func ms(t time.Time) int64 { return t.UnixMilli() }

func msOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}
