package transport

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

func TestParseSpoolName(t *testing.T) {
	for _, tc := range []struct {
		name string
		seq  uint64
		ok   bool
	}{
		{spoolName(0), 0, true},
		{spoolName(42), 42, true},
		{"18446744073709551615.batch", 1<<64 - 1, true},
		{"18446744073709551616.batch", 0, false}, // overflows
		{"42.batch", 0, false},
		{"0000000000000000042.batch", 0, false},
		{"000000000000000000042.batch", 0, false},
		{"0000000000000000004a.batch", 0, false},
		{"+0000000000000000042.batch", 0, false},
		{"00000000000000000042.batch.tmp", 0, false},
		{"00000000000000000042", 0, false},
		{".tmp-123", 0, false},
		{"", 0, false},
	} {
		seq, ok := parseSpoolName(tc.name)
		if seq != tc.seq || ok != tc.ok {
			t.Errorf("parseSpoolName(%q) = %d, %v; want %d, %v", tc.name, seq, ok, tc.seq, tc.ok)
		}
	}
}

func FuzzParseSpoolName(f *testing.F) {
	for _, s := range []string{spoolName(1), spoolName(1<<64 - 1), "x.batch", "", ".tmp-1", "00000000000000000001.batc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		seq, ok := parseSpoolName(name)
		if ok && spoolName(seq) != name {
			t.Fatalf("parseSpoolName(%q) = %d, which is named %q", name, seq, spoolName(seq))
		}
	})
}

func encodedBatch(t testing.TB, events int) []byte {
	t.Helper()
	b := wire.Batch{ID: strings.Repeat("ab", 16), Node: "node-1", SentAt: time.Unix(1, 0).UTC()}
	for i := range events {
		b.Events = append(b.Events, testEvent(i))
	}
	var buf bytes.Buffer
	if err := wire.Encode(&buf, &b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCheckSpoolFile(t *testing.T) {
	good := encodedBatch(t, 3)
	if n, err := checkSpoolFile(good); n != 3 || err != nil {
		t.Errorf("checkSpoolFile(good) = %d, %v", n, err)
	}
	for name, data := range map[string][]byte{
		"empty":         {},
		"not gzip":      []byte("not gzip"),
		"truncated":     good[:len(good)-1],
		"half":          good[:len(good)/2],
		"json not gzip": []byte(`{"id":"x"}`),
	} {
		if _, err := checkSpoolFile(data); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: err = %v, want errCorrupt", name, err)
		}
	}
}

func FuzzCheckSpoolFile(f *testing.F) {
	good := encodedBatch(f, 2)
	f.Add(good)
	f.Add(good[:len(good)-4])
	f.Add([]byte("\x1f\x8b\x08\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := checkSpoolFile(data)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v does not wrap errCorrupt", err)
			}
			return
		}
		if n < 0 || n > wire.MaxEvents {
			t.Fatalf("%d events in a valid batch", n)
		}
	})
}

func TestSpoolOrderLimitsAndRestart(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	s, err := openSpool(dir, 100, 3, log)
	if err != nil {
		t.Fatal(err)
	}
	for i, data := range [][]byte{[]byte("aaaa"), []byte("bbbb"), []byte("cccc")} {
		if err := s.add(data, i+1); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	if err := s.add([]byte("dddd"), 1); !errors.Is(err, errSpoolFull) {
		t.Errorf("fourth file: err = %v, want errSpoolFull", err)
	}
	e, _ := s.oldest()
	if err := s.remove(e); err != nil {
		t.Fatal(err)
	}
	if err := s.add(bytes.Repeat([]byte("x"), 93), 1); !errors.Is(err, errSpoolFull) {
		t.Errorf("over the byte limit: err = %v, want errSpoolFull", err)
	}
	if err := s.add(bytes.Repeat([]byte("x"), 92), 1); err != nil {
		t.Errorf("exactly at the byte limit: %v", err)
	}
	if b, f := s.usage(); b != 100 || f != 3 {
		t.Errorf("usage = %d bytes, %d files; want 100, 3", b, f)
	}

	// A new spool on the same directory resumes in order and numbers on.
	s2, err := openSpool(dir, 1000, 10, log)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		e, ok := s2.oldest()
		if !ok {
			break
		}
		if e.events != -1 {
			t.Errorf("resumed entry %d has a known event count", e.seq)
		}
		data, _ := readSpoolFile(filepath.Join(dir, spoolName(e.seq)))
		got = append(got, string(data[:1]))
		s2.forget(e)
	}
	if diff := cmp.Diff([]string{"b", "c", "x"}, got); diff != "" {
		t.Errorf("resumed order (-want +got):\n%s", diff)
	}
	if s2.next != 5 {
		t.Errorf("next sequence %d, want 5", s2.next)
	}
}

func TestSpoolRefusesHugeFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, spoolName(1))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(wire.MaxCompressedBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s, err := openSpool(dir, 1<<30, 10, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := s.oldest()
	if _, _, err := s.load(e); !errors.Is(err, errCorrupt) {
		t.Fatalf("load of an oversized file: err = %v", err)
	}
	if err := s.setAside(e); err != nil {
		t.Fatal(err)
	}
	// Too large to keep for a post mortem: removed, not moved.
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("oversized file still in the spool: %v", err)
	}
	if aside, _ := os.ReadDir(filepath.Join(dir, corruptDir)); len(aside) != 0 {
		t.Errorf("oversized file kept in corrupt/")
	}
	if _, f := s.usage(); f != 0 {
		t.Errorf("%d files counted after setting aside", f)
	}
}

func TestCorruptDirBounded(t *testing.T) {
	dir := t.TempDir()
	for i := range maxCorruptFiles + 5 {
		os.WriteFile(filepath.Join(dir, spoolName(uint64(i+1))), []byte("junk"), 0o600)
	}
	s, err := openSpool(dir, 1<<30, 100, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for {
		e, ok := s.oldest()
		if !ok {
			break
		}
		if err := s.setAside(e); err != nil {
			t.Fatal(err)
		}
	}
	aside, _ := os.ReadDir(filepath.Join(dir, corruptDir))
	if len(aside) != maxCorruptFiles || aside[0].Name() != spoolName(6) {
		t.Errorf("corrupt/ holds %d files from %s; want the newest %d", len(aside), aside[0].Name(), maxCorruptFiles)
	}
}
