package store

import (
	"context"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/testenv"
)

// columns lists table.column names of the store's tables (goose's own
// table left out).
func columns(t *testing.T, db *DB) []string {
	t.Helper()
	query := `SELECT m.name || '.' || p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> 'goose_db_version'`
	if db.Dialect() == "postgres" {
		query = `SELECT table_name || '.' || column_name FROM information_schema.columns
			WHERE table_schema = 'public' AND table_name <> 'goose_db_version'`
	}
	rows, err := db.query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// TestDialectsHaveTheSameSchema keeps the two migration sets from
// drifting: after migrating, SQLite and PostgreSQL have the same tables
// with the same columns.
func TestDialectsHaveTheSameSchema(t *testing.T) {
	ctx := context.Background()
	lite, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), SQLiteFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	pg, err := OpenPostgres(ctx, testenv.SharedPostgres(t).Database(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	want := columns(t, lite)
	if len(want) < 50 {
		t.Fatalf("only %d columns found in SQLite: %v", len(want), want)
	}
	if diff := cmp.Diff(want, columns(t, pg)); diff != "" {
		t.Errorf("columns (-sqlite +postgres):\n%s", diff)
	}
}
