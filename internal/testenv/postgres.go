package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a PostgreSQL server (Debian's) running on loopback from a
// temporary data directory.
type Postgres struct {
	// DSN connects to the server's postgres database as the superuser.
	DSN  string
	Port int
}

// StartPostgres starts a server for one test; it is stopped when the test
// ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	Integration(t)
	p, err := startPostgres(t)
	if err != nil {
		fatal(t, "starting PostgreSQL", err)
	}
	return p
}

// SharedPostgres returns a server shared by all tests of the package (see
// Main); tests keep apart with Database.
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	Integration(t)
	return sharedComponent(t, "postgres", startPostgres)
}

// postgresBinDir finds the newest installed server's bin directory.
func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: no PostgreSQL server under /usr/lib/postgresql (Debian package postgresql)", errMissing)
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// serverCredential is who the server runs as: PostgreSQL refuses to run as
// root, so as root it runs as the postgres account the Debian package makes.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("%w: no postgres user to run the server as (Debian package postgresql): %w", errMissing, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parsing uid of postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("parsing gid of postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func startPostgres(s scope) (*Postgres, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bulwark-pg-")
	if err != nil {
		return nil, fmt.Errorf("creating PostgreSQL directory: %w", err)
	}
	s.Cleanup(func() { os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("handing %s to postgres: %w", dir, err)
		}
	}
	logs, err := logDir(s, "postgres")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb, err := startProcess(logs, "initdb", processOptions{cred: cred}, filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions")
	if err != nil {
		return nil, err
	}
	<-initdb.Done()
	if err := initdb.Err(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, initdb.Tail(20))
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	// Durability settings are off: the data dies with the test.
	srv, err := startProcess(logs, "postgres", processOptions{cred: cred, stop: syscall.SIGINT}, filepath.Join(bin, "postgres"),
		"-D", data, "-p", strconv.Itoa(port), "-k", dir, "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	if err != nil {
		return nil, err
	}
	s.Cleanup(func() { srv.Stop(10 * time.Second) })
	p := &Postgres{Port: port, DSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = waitFor(ctx, "PostgreSQL to accept connections", srv, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		conn, err := pgx.Connect(ctx, p.DSN)
		if err != nil {
			return false, err
		}
		defer conn.Close(ctx)
		return conn.Ping(ctx) == nil, nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Database creates an empty database for one test and returns its DSN; it
// is dropped when the test ends.
func (p *Postgres) Database(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dropping database %s: %v", name, err)
		}
	})
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, name)
}

func (p *Postgres) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, p.DSN)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", p.DSN, err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}
