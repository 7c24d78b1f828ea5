package gobinary

import "testing"

func TestStdlibVersion(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{in: "go1.21.0", want: "1.21.0", wantOK: true},
		{in: "go1.20", want: "1.20.0", wantOK: true},
		{in: "go1.9", want: "1.9.0", wantOK: true},
		{in: "go1", want: "1.0.0", wantOK: true},
		{in: "go1.22rc1", want: "1.22.0-rc.1", wantOK: true},
		{in: "go1.19beta1", want: "1.19.0-beta.1", wantOK: true},
		{in: "go1.22alpha2", want: "1.22.0-alpha.2", wantOK: true},
		{in: "go1.21rc", want: "1.21.0-rc", wantOK: true},
		{in: "go1.24.0 X:nocoverageredesign", want: "1.24.0", wantOK: true},
		{in: "go1.20.5 X:boringcrypto", want: "1.20.5", wantOK: true},
		{in: "go1.20.10 (Red Hat 1.20.10-1.el9)", want: "1.20.10", wantOK: true},
		{in: "go1.21.0-bigcorp", want: "1.21.0", wantOK: true},
		{in: "devel go1.22-1b2c3d4 Tue Aug 1 00:00:00 2023 +0000", wantOK: false},
		{in: "devel +b7a9c2d Tue Aug 1 00:00:00 2023 +0000", wantOK: false},
		{in: "", wantOK: false},
		{in: "1.21.0", wantOK: false},
		{in: "go", wantOK: false},
		{in: "go1.21.0.1", wantOK: false},
		{in: "gox", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := stdlibVersion(tt.in)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("stdlibVersion(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
