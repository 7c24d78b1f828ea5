package java

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/extract"
)

// The limits are tested lowered; at their real values the archives would
// take hundreds of megabytes.
func TestWalkerLimits(t *testing.T) {
	inner := zipOf(t, map[string]string{
		"META-INF/maven/com.example/inner/pom.properties": "groupId=com.example\nartifactId=inner\nversion=1.0\n",
		"padding": strings.Repeat("x", 10<<10),
	}, zip.Store)
	many := map[string]string{}
	for i := range 50 {
		many[fmt.Sprintf("lib/inner%02d.jar", i)] = string(inner)
	}
	outer := zipOf(t, many, zip.Store)
	entries := map[string]string{}
	for i := range 3000 {
		entries[fmt.Sprintf("com/example/Class%04d.class", i)] = ""
	}
	bigDirectory := zipOf(t, entries, zip.Deflate)

	tests := []struct {
		name    string
		archive []byte
		limits  limits
		wantN   int
		wantErr string
	}{
		{name: "within the limits", limits: defaultLimits, wantN: 50},
		{
			name:    "opened bytes",
			limits:  limits{nesting: 3, nestedSize: 1 << 20, openedBytes: 100 << 10, directorySize: 1 << 20},
			wantN:   9,
			wantErr: "more than 102400 bytes of entries to read",
		},
		{
			name:    "central directory",
			archive: bigDirectory,
			limits:  limits{nesting: 3, nestedSize: 1 << 20, openedBytes: 1 << 30, directorySize: 1 << 10},
			wantErr: "central directory over 1024 bytes",
		},
		{
			name:    "nested size",
			limits:  limits{nesting: 3, nestedSize: 1 << 10, openedBytes: 1 << 30, directorySize: 1 << 20},
			wantErr: "42 more errors",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			archive := outer
			if tt.archive != nil {
				archive = tt.archive
			}
			w := newWalker(tt.limits)
			got := w.archive(context.Background(), bytes.NewReader(archive), int64(len(archive)), "app.jar", 0)
			if len(got) != tt.wantN {
				t.Errorf("archive() returned %d packages, want %d", len(got), tt.wantN)
			}
			err := w.err()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("archive() error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("archive() error = %v, want one saying %q", err, tt.wantErr)
			case tt.wantErr != "" && tt.wantErr != "42 more errors" && !errors.Is(err, extract.ErrTooLarge):
				t.Errorf("archive() error = %v, want %v", err, extract.ErrTooLarge)
			}
		})
	}
}

func zipOf(t *testing.T, files map[string]string, method uint16) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(files[name])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseManifest(t *testing.T) {
	tests := []struct {
		name         string
		data         string
		whole        bool
		want         map[string]string
		wantComplete bool
	}{
		{
			name:         "continuations, CRLF, case and sections",
			data:         "Manifest-Version: 1.0\r\nBundle-SymbolicName: org.apache.commons.\r\n lang3;singleton:=true\r\nbundle-version:3.12.0\r\n\r\nName: org/apache/\r\nImplementation-Version: 9\r\n",
			whole:        true,
			want:         map[string]string{"manifest-version": "1.0", "bundle-symbolicname": "org.apache.commons.lang3;singleton:=true", "bundle-version": "3.12.0"},
			wantComplete: true,
		},
		{
			name:         "first value wins, lines without a colon skipped",
			data:         "A: 1\nA: 2\nnonsense\n continued nonsense\nB:2",
			whole:        true,
			want:         map[string]string{"a": "1", "b": "2"},
			wantComplete: true,
		},
		{
			name:         "byte order mark and bare CR",
			data:         "\ufeffA: 1\rB: 2\r\r",
			whole:        true,
			want:         map[string]string{"a": "1", "b": "2"},
			wantComplete: true,
		},
		{
			name:  "cut off",
			data:  "A: 1\nB: 2\n more\nC: partial",
			whole: false,
			want:  map[string]string{"a": "1", "b": "2more"},
		},
		{
			name:         "cut off after the main section",
			data:         "A: 1\n\nName: x\nC: partial",
			whole:        false,
			want:         map[string]string{"a": "1"},
			wantComplete: true,
		},
		{name: "empty", data: "", whole: true, want: map[string]string{}, wantComplete: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, complete := parseManifest([]byte(tt.data), tt.whole)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseManifest() mismatch (-want +got):\n%s", diff)
			}
			if complete != tt.wantComplete {
				t.Errorf("parseManifest() complete = %v, want %v", complete, tt.wantComplete)
			}
		})
	}
}

func TestCoordinates(t *testing.T) {
	tests := []struct {
		file                     string
		attrs                    map[string]string
		group, artifact, version string
		wantOK                   bool
	}{
		{file: "log4j-1.2-1.2.17.jar", attrs: map[string]string{"bundle-symbolicname": "org.apache.log4j", "bundle-version": "1.2.17"},
			group: "log4j", artifact: "log4j", version: "1.2.17", wantOK: true},
		{file: "log4j-1.2-1.2.17.jar", artifact: "log4j-1.2", version: "1.2.17", wantOK: true},
		{file: "netty-codec-http-4.1.48.Final.jar", attrs: map[string]string{"bundle-symbolicname": "io.netty.codec-http"},
			group: "io.netty", artifact: "netty-codec-http", version: "4.1.48.Final", wantOK: true},
		{file: "Saxon-HE-9.9.1-7.jar", attrs: map[string]string{"implementation-version": "9.9.1-7"},
			artifact: "Saxon-HE", version: "9.9.1-7", wantOK: true},
		{file: "Saxon-HE-9.9.1-7.jar", artifact: "Saxon-HE-9.9.1", version: "7", wantOK: true},
		{file: "kafka_2.13-3.1.0.jar", artifact: "kafka_2.13", version: "3.1.0", wantOK: true},
		{file: "app.JAR", attrs: map[string]string{"bundle-version": "2"}, artifact: "app", version: "2", wantOK: true},
		{file: "-1.0.jar"},
		{file: "app-.jar"},
		{file: "app.jar", attrs: map[string]string{"implementation-vendor-id": "bad vendor", "implementation-version": "1"},
			artifact: "app", version: "1", wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			group, artifact, version, ok := coordinates(tt.attrs, tt.file)
			if group != tt.group || artifact != tt.artifact || version != tt.version || ok != tt.wantOK {
				t.Errorf("coordinates(%v, %q) = %q, %q, %q, %v; want %q, %q, %q, %v", tt.attrs, tt.file,
					group, artifact, version, ok, tt.group, tt.artifact, tt.version, tt.wantOK)
			}
		})
	}
}
