package rpm

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseHeader(t *testing.T) {
	nevra := []tagValue{
		stringTag(tagName, "openssl-libs"),
		stringTag(tagVersion, "3.0.7"),
		stringTag(tagRelease, "27.el9"),
		int32Tag(tagEpoch, 1),
		stringTag(tagArch, "x86_64"),
		stringTag(tagSourceRPM, "openssl-3.0.7-27.el9.src.rpm"),
	}
	withRegion := append([]tagValue{{tag: 63, typ: 7, count: 16, data: make([]byte, 16)}}, nevra...)
	// rpm appends entries it adds after installation; they replace the
	// original header's.
	dribble := append(append([]tagValue(nil), nevra...), stringTag(tagRelease, "28.el9"))
	tests := []struct {
		name    string
		b       []byte
		want    header
		wantErr string
	}{
		{
			name: "all tags",
			b:    makeHeader(nevra...),
			want: header{name: "openssl-libs", version: "3.0.7", release: "27.el9", epoch: 1, arch: "x86_64", sourceRPM: "openssl-3.0.7-27.el9.src.rpm"},
		},
		{
			name: "region tag first",
			b:    makeHeader(withRegion...),
			want: header{name: "openssl-libs", version: "3.0.7", release: "27.el9", epoch: 1, arch: "x86_64", sourceRPM: "openssl-3.0.7-27.el9.src.rpm"},
		},
		{
			name: "dribble entry replaces",
			b:    makeHeader(dribble...),
			want: header{name: "openssl-libs", version: "3.0.7", release: "28.el9", epoch: 1, arch: "x86_64", sourceRPM: "openssl-3.0.7-27.el9.src.rpm"},
		},
		{
			name: "i18n and array strings",
			b: makeHeader(
				tagValue{tag: tagName, typ: typeI18NString, count: 2, data: []byte("a\x00b\x00")},
				tagValue{tag: tagVersion, typ: typeStringArray, count: 1, data: []byte("1\x00")},
				stringTag(tagRelease, "1"),
			),
			want: header{name: "a", version: "1", release: "1"},
		},
		{name: "too short", b: []byte{0, 0, 0}, wantErr: "header of 3 bytes is too short"},
		{name: "no entries", b: make([]byte, 8), wantErr: "header has 0 index entries"},
		{name: "too many entries", b: []byte{0, 1, 0, 0, 0, 0, 0, 0}, wantErr: "header has 65536 index entries"},
		{name: "huge data", b: []byte{0, 0, 0, 1, 0x10, 0, 0, 0}, wantErr: "header data of 268435456 bytes"},
		{name: "cut short", b: makeHeader(nevra...)[:100], wantErr: "header of 100 bytes is cut short"},
		{
			name:    "missing tags",
			b:       makeHeader(stringTag(tagArch, "x86_64")),
			wantErr: "no NAME tag\nno VERSION tag\nno RELEASE tag",
		},
		{
			name: "bad tags",
			b: makeHeader(
				tagValue{tag: tagName, typ: typeInt32, count: 1, data: []byte{0, 0, 0, 1}},
				tagValue{tag: tagVersion, typ: typeString, count: 0, data: []byte("1\x00")},
				tagValue{tag: tagEpoch, typ: typeString, count: 1, data: []byte("1\x00")},
				// Last, so that no other string ends it.
				tagValue{tag: tagRelease, typ: typeString, count: 1, data: []byte("1")},
			),
			wantErr: "NAME tag: type 4 is not a string\nVERSION tag: no value\nRELEASE tag: string is not terminated\nEPOCH tag: type 6 is not INT32",
		},
		{
			name:    "offset outside the data",
			b:       withOffset(makeHeader(nevra...), 0, 1<<20),
			wantErr: "NAME tag: offset 1048576 is outside the",
		},
		{
			name:    "negative offset",
			b:       withOffset(makeHeader(nevra...), 3, -4),
			wantErr: "EPOCH tag: offset -4 is outside the",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseHeader(tt.b)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseHeader error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseHeader: %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(header{})); diff != "" {
				t.Errorf("parseHeader mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// withOffset sets the data offset of index entry i.
func withOffset(b []byte, i int, off int32) []byte {
	binary.BigEndian.PutUint32(b[8+16*i+8:], uint32(off))
	return b
}

func TestHeaderValidate(t *testing.T) {
	ok := header{name: "libstdc++6", version: "11.2.1+git610", release: "1.3.9", arch: "x86_64"}
	tests := []struct {
		name    string
		h       header
		wantErr string
	}{
		{"valid", ok, ""},
		{"tilde and caret", header{name: "a", version: "1.0~rc1^git2", release: "1"}, ""},
		{"no arch", header{name: "a", version: "1", release: "1"}, ""},
		{"empty name", header{version: "1", release: "1"}, "invalid NAME"},
		{"name with a slash", header{name: "../x", version: "1", release: "1"}, "invalid NAME"},
		{"name with a space", header{name: "a b", version: "1", release: "1"}, "invalid NAME"},
		{"non-ASCII name", header{name: "pâte", version: "1", release: "1"}, "invalid NAME"},
		{"long name", header{name: strings.Repeat("a", 256), version: "1", release: "1"}, "invalid NAME"},
		{"dash in version", header{name: "a", version: "1-2", release: "1"}, `invalid VERSION "1-2"`},
		{"empty release", header{name: "a", version: "1"}, `invalid RELEASE ""`},
		{"control character", header{name: "a", version: "1", release: "1\x1b[31m"}, "invalid RELEASE"},
		{"arch with a qualifier", header{name: "a", version: "1", release: "1", arch: "x86_64&distro=x"}, "invalid ARCH"},
		{"negative epoch", header{name: "a", version: "1", release: "1", epoch: 1 << 31}, "invalid EPOCH 2147483648"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.validate()
			if tt.wantErr == "" && err != nil {
				t.Errorf("validate() = %v, want nil", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("validate() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestEVR(t *testing.T) {
	tests := []struct {
		h    header
		want string
	}{
		{header{version: "3.0.7", release: "27.el9"}, "3.0.7-27.el9"},
		{header{version: "3.0.7", release: "27.el9", epoch: 1}, "1:3.0.7-27.el9"},
		{header{version: "9.9.4", release: "73.el7_6", epoch: 32}, "32:9.9.4-73.el7_6"},
	}
	for _, tt := range tests {
		if got := tt.h.evr(); got != tt.want {
			t.Errorf("evr(%+v) = %q, want %q", tt.h, got, tt.want)
		}
	}
}

func TestParseSourceRPM(t *testing.T) {
	tests := []struct {
		in          string
		wantName    string
		wantVersion string
		wantErr     bool
	}{
		{"openssl-3.0.7-27.el9.src.rpm", "openssl", "3.0.7-27.el9", false},
		{"util-linux-2.32.1-42.el8_8.src.rpm", "util-linux", "2.32.1-42.el8_8", false},
		{"gcc11-11.2.1+git610-1.3.9.src.rpm", "gcc11", "11.2.1+git610-1.3.9", false},
		{"python3.10-3.10.0-1.fc35.src.rpm", "python3.10", "3.10.0-1.fc35", false},
		{"redhat-release-8.6-0.1.el8.src.rpm", "redhat-release", "8.6-0.1.el8", false},
		{"nvidia-kmod-535.54-1.nosrc.rpm", "nvidia-kmod", "535.54-1", false},
		{"openssl-3.0.7-27.el9.x86_64.rpm", "", "", true},
		{"openssl-3.0.7.src.rpm", "", "", true},
		{"-3.0.7-27.el9.src.rpm", "", "", true},
		{"openssl--27.el9.src.rpm", "", "", true},
		{"openssl-3.0.7-.src.rpm", "", "", true},
		{".src.rpm", "", "", true},
		{"(none)", "", "", true},
		{"open ssl-3.0.7-27.el9.src.rpm", "", "", true},
	}
	for _, tt := range tests {
		name, version, err := parseSourceRPM(tt.in)
		if (err != nil) != tt.wantErr || name != tt.wantName || version != tt.wantVersion {
			t.Errorf("parseSourceRPM(%q) = %q, %q, %v; want %q, %q, error %v", tt.in, name, version, err, tt.wantName, tt.wantVersion, tt.wantErr)
		}
	}
}
