package update

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReadChanges(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	const csv = "2024-05-03T10:00:00Z,GHSA-aaaa\n" +
		"2024-05-02T10:00:00.123456Z,GO-2024-0001\r\n" +
		"2024-05-01T10:00:00Z,PYSEC-2024-1\n" +
		"\n" +
		"2024-04-01T10:00:00+02:00,DSA-1\n"
	tests := []struct {
		name    string
		csv     string
		since   time.Time
		limit   int
		want    *changeList
		wantErr string
	}{
		{
			name:  "changes after since",
			csv:   csv,
			since: at("2024-05-01T10:00:00Z"),
			limit: 10,
			want: &changeList{Newest: at("2024-05-03T10:00:00Z"), Changes: []Change{
				{Modified: at("2024-05-03T10:00:00Z"), ID: "GHSA-aaaa"},
				{Modified: at("2024-05-02T10:00:00.123456Z"), ID: "GO-2024-0001"},
			}},
		},
		{
			name:  "everything",
			csv:   csv,
			limit: 10,
			want: &changeList{Newest: at("2024-05-03T10:00:00Z"), Changes: []Change{
				{Modified: at("2024-05-03T10:00:00Z"), ID: "GHSA-aaaa"},
				{Modified: at("2024-05-02T10:00:00.123456Z"), ID: "GO-2024-0001"},
				{Modified: at("2024-05-01T10:00:00Z"), ID: "PYSEC-2024-1"},
				{Modified: at("2024-04-01T08:00:00Z"), ID: "DSA-1"},
			}},
		},
		{
			name:  "up to date",
			csv:   csv,
			since: at("2024-05-03T10:00:00Z"),
			limit: 10,
			want:  &changeList{Newest: at("2024-05-03T10:00:00Z")},
		},
		{
			name:  "over the limit",
			csv:   csv,
			limit: 1,
			want: &changeList{Newest: at("2024-05-03T10:00:00Z"), Overflow: true, Changes: []Change{
				{Modified: at("2024-05-03T10:00:00Z"), ID: "GHSA-aaaa"},
				{Modified: at("2024-05-02T10:00:00.123456Z"), ID: "GO-2024-0001"},
			}},
		},
		{
			name:  "root export with ecosystems",
			csv:   "2024-05-03T10:00:00Z,PyPI/PYSEC-2024-9\n2024-05-02T10:00:00Z,crates.io/RUSTSEC-2024-1",
			limit: 10,
			want: &changeList{Newest: at("2024-05-03T10:00:00Z"), Changes: []Change{
				{Modified: at("2024-05-03T10:00:00Z"), ID: "PYSEC-2024-9"},
				{Modified: at("2024-05-02T10:00:00Z"), ID: "RUSTSEC-2024-1"},
			}},
		},
		{
			name:  "an id listed twice counts once",
			csv:   "2024-05-03T10:00:00Z,A-1\n2024-05-02T10:00:00Z,A-1\n",
			limit: 10,
			want:  &changeList{Newest: at("2024-05-03T10:00:00Z"), Changes: []Change{{Modified: at("2024-05-03T10:00:00Z"), ID: "A-1"}}},
		},
		{name: "empty", csv: "", limit: 10, want: &changeList{}},
		{name: "no comma", csv: "2024-05-03T10:00:00Z GHSA-1\n", limit: 10, wantErr: "line 1: \"2024-05-03T10:00:00Z GHSA-1\" is not <time>,<id>"},
		{name: "bad time", csv: "yesterday,GHSA-1\n", limit: 10, wantErr: "line 1: bad time \"yesterday\""},
		{name: "path in id", csv: "2024-05-03T10:00:00Z,PyPI/../x\n", limit: 10, wantErr: `bad record id "../x"`},
		{name: "empty id", csv: "2024-05-03T10:00:00Z,\n", limit: 10, wantErr: `bad record id ""`},
		{name: "long line", csv: "2024-05-03T10:00:00Z," + strings.Repeat("x", 2000) + "\n", limit: 10, wantErr: "line longer than 1024 bytes"},
		{name: "out of order", csv: "2024-05-01T10:00:00Z,A-1\n2024-05-03T10:00:00Z,A-2\n", limit: 10, wantErr: "line 2 (2024-05-03T10:00:00Z after 2024-05-01T10:00:00Z): modified_id.csv is not sorted newest first"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readChanges(strings.NewReader(tc.csv), tc.since, tc.limit)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("readChanges = %v, want error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("readChanges (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadChangesStopsReading(t *testing.T) {
	// Lines past the last sync are never read, so a broken tail does not
	// matter to an up-to-date database.
	csv := "2024-05-03T10:00:00Z,A-1\n2024-05-01T10:00:00Z,A-2\nnot a line at all\n"
	got, err := readChanges(strings.NewReader(csv), time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC), 10)
	if err != nil || len(got.Changes) != 1 {
		t.Errorf("readChanges = %+v, %v; want A-1 alone", got, err)
	}
}

func FuzzReadChanges(f *testing.F) {
	f.Add([]byte("2024-05-03T10:00:00Z,GHSA-aaaa\n2024-05-02T10:00:00.5Z,PyPI/PYSEC-1\r\n\n2024-04-01T10:00:00+02:00,DSA-1\n"), int64(0), 10)
	f.Add([]byte("2024-05-03T10:00:00Z,A-1\n2024-05-03T10:00:00Z,A-1\n"), int64(1714730400), 1)
	f.Add([]byte("x,y\n"), int64(0), 0)
	f.Fuzz(func(t *testing.T, data []byte, sinceUnix int64, limit int) {
		if limit < 0 || limit > 1000 {
			return
		}
		since := time.Unix(sinceUnix, 0).UTC()
		got, err := readChanges(strings.NewReader(string(data)), since, limit)
		if err != nil {
			if got != nil {
				t.Fatalf("readChanges returned %+v with error %v", got, err)
			}
			return
		}
		if len(got.Changes) > limit+1 || got.Overflow != (len(got.Changes) == limit+1) {
			t.Fatalf("%d changes with limit %d, overflow %v", len(got.Changes), limit, got.Overflow)
		}
		seen := map[string]bool{}
		prev := got.Newest
		for _, c := range got.Changes {
			if !c.Modified.After(since) {
				t.Fatalf("change %+v is not after %s", c, since)
			}
			if c.Modified.After(prev) {
				t.Fatalf("change %+v is newer than the one before (%s)", c, prev)
			}
			prev = c.Modified
			if err := checkID(c.ID); err != nil || strings.Contains(c.ID, "/") {
				t.Fatalf("change with id %q: %v", c.ID, err)
			}
			if seen[c.ID] {
				t.Fatalf("id %q listed twice", c.ID)
			}
			seen[c.ID] = true
		}
		if len(got.Changes) > 0 && got.Newest.IsZero() {
			t.Fatal("changes without a newest time")
		}
	})
}

func TestParseChangeRejectsUnsorted(t *testing.T) {
	_, err := readChanges(strings.NewReader("2024-05-01T10:00:00Z,A-1\n2024-05-03T10:00:00Z,A-2\n"), time.Time{}, 10)
	if !errors.Is(err, errUnsorted) {
		t.Errorf("readChanges of an unsorted file: %v, want errUnsorted", err)
	}
}
