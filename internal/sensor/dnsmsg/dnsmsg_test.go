package dnsmsg

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// query builds a DNS query message for name (dot-separated labels, no
// escaping) and type t, as a stub resolver writes it.
func query(name string, t uint16) []byte {
	msg := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	msg = append(msg, encodeName(name)...)
	msg = binary.BigEndian.AppendUint16(msg, t)
	return binary.BigEndian.AppendUint16(msg, 1)
}

func encodeName(name string) []byte {
	var b []byte
	if name != "" {
		for _, l := range strings.Split(name, ".") {
			b = append(b, byte(len(l)))
			b = append(b, l...)
		}
	}
	return append(b, 0)
}

func TestParse(t *testing.T) {
	response := query("example.com", 1)
	response[2] |= 0x80
	update := query("example.com", 6)
	update[2] = 5 << 3
	tests := []struct {
		name string
		msg  []byte
		want Question
	}{
		{"A", query("www.example.com", 1), Question{Name: "www.example.com", Type: "A", Code: 1, Query: true}},
		{"lower-cased", query("WWW.Example.COM", 28), Question{Name: "www.example.com", Type: "AAAA", Code: 28, Query: true}},
		{"root", query("", 2), Question{Name: ".", Type: "NS", Code: 2, Query: true}},
		{"SRV underscore", query("_http._tcp.svc.cluster.local", 33), Question{Name: "_http._tcp.svc.cluster.local", Type: "SRV", Code: 33, Query: true}},
		{"HTTPS", query("example.com", 65), Question{Name: "example.com", Type: "HTTPS", Code: 65, Query: true}},
		{"unknown type", query("example.com", 4242), Question{Name: "example.com", Type: "TYPE4242", Code: 4242, Query: true}},
		{"response", response, Question{Name: "example.com", Type: "A", Code: 1}},
		{"update opcode", update, Question{Name: "example.com", Type: "SOA", Code: 6, Query: true, Opcode: 5}},
		{"dot and backslash escaped", query("a.b\\c", 16), Question{Name: "a.b\\\\c", Type: "TXT", Code: 16, Query: true}},
		{"dot inside a label", append(append([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, 3, 'a', '.', 'b', 3, 'c', 'o', 'm', 0), 0, 1), Question{Name: `a\.b.com`, Type: "A", Code: 1, Query: true}},
		{"control and high bytes", query("a\n\x00\xff b.com", 1), Question{Name: `a\010\000\255\032b.com`, Type: "A", Code: 1, Query: true}},
		{"no class", query("example.com", 1)[:12+13+2], Question{Name: "example.com", Type: "A", Code: 1, Query: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.msg)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTruncated(t *testing.T) {
	long := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 55) + ".com"
	full := query(long, 16)
	tests := []struct {
		name string
		msg  []byte
		want Question
	}{
		// The probe's 256-byte cut falls inside the last label.
		{"cut in a label", full[:256], Question{Name: long[:63*3+2], Truncated: true, Query: true}},
		{"cut before the type", full[:len(full)-4], Question{Name: long, Truncated: true, Query: true}},
		{"cut inside the type", full[:len(full)-3], Question{Name: long, Truncated: true, Query: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.msg)
			if !errors.Is(err, ErrTruncated) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error = %v, want ErrTruncated and ErrMalformed", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseHostile(t *testing.T) {
	header := []byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	with := func(b ...byte) []byte { return append(bytes.Clone(header), b...) }
	var tooLongWire []byte
	for range 5 {
		tooLongWire = append(tooLongWire, 63)
		tooLongWire = append(tooLongWire, bytes.Repeat([]byte{'x'}, 63)...)
	}
	// 120 labels of one byte that each expand to \DDD: 240 wire bytes,
	// 599 in presentation form.
	var tooLongText []byte
	for range 120 {
		tooLongText = append(tooLongText, 1, 0x01)
	}
	tests := []struct {
		name      string
		msg       []byte
		truncated bool
	}{
		{"empty", nil, true},
		{"short header", header[:11], true},
		{"no question", append([]byte{0, 0, 0, 0, 0, 0}, header[6:]...), false},
		{"header only", header, true},
		{"label past the end", with(5, 'a', 'b'), true},
		{"pointer to itself", with(0xc0, 12, 0, 1), false},
		{"pointer forward", with(0xc0, 40, 0, 1), false},
		{"pointer into the header", with(0xc0, 2, 0, 1), false},
		{"pointer loop within the name", with(1, 'a', 1, 'b', 0xc0, 14, 0, 1), false},
		{"half a pointer", with(1, 'a', 0xc0), true},
		{"extended label type", with(0x41, 'a', 0), false},
		{"reserved label type", with(0x80, 'a', 0), false},
		{"name over 255 bytes", with(append(tooLongWire, 0, 0, 1)...), false},
		{"presentation over 255 bytes", with(append(tooLongText, 0, 0, 1)...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := Parse(tt.msg)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%x) = %+v, %v; want an ErrMalformed error", tt.msg, q, err)
			}
			if got := errors.Is(err, ErrTruncated); got != tt.truncated {
				t.Errorf("Parse error %v: ErrTruncated = %t, want %t", err, got, tt.truncated)
			}
			if !q.Truncated && q != (Question{}) {
				t.Errorf("Parse returned %+v with its error, want the zero Question", q)
			}
		})
	}
}

// TestReadNamePointers covers compression in a later part of a message,
// where a pointer may refer back to a name already read. (A query's first
// question has nothing before it to point to.)
func TestReadNamePointers(t *testing.T) {
	msg := append(make([]byte, 12), encodeName("example.com")...) // offset 12
	second := len(msg)
	msg = append(msg, 3, 'w', 'w', 'w', 0xc0, 12) // www.<example.com>
	third := len(msg)
	msg = append(msg, 3, 'f', 'o', 'o', 0xc0, byte(second)) // foo.<www.example.com>
	loop := len(msg)
	msg = append(msg, 1, 'x', 0xc0, byte(loop)) // points at its own start

	for _, tt := range []struct {
		off      int
		want     string
		wantNext int
	}{
		{second, "www.example.com", second + 6},
		{third, "foo.www.example.com", third + 6},
	} {
		got, next, err := readName(msg, tt.off, nil)
		if err != nil {
			t.Fatalf("readName at %d: %v", tt.off, err)
		}
		if string(got) != tt.want || next != tt.wantNext {
			t.Errorf("readName at %d = %q, %d; want %q, %d", tt.off, got, next, tt.want, tt.wantNext)
		}
	}
	if _, _, err := readName(msg, loop, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("readName of a self-referencing name: %v, want ErrMalformed", err)
	}
}

func TestReadNamePointerChainBound(t *testing.T) {
	// A chain of pointers each one step back: every jump is legal on its
	// own, the chain is longer than maxPointers.
	msg := make([]byte, 12)
	msg = append(msg, 0) // the root at 12
	for i := range maxPointers + 1 {
		msg = append(msg, 0xc0, byte(12+2*i))
	}
	// 12 is the root, 13 points to 12, 15 to 13 ... the last pointer needs
	// maxPointers+1 jumps.
	msg[14] = 12
	last := len(msg) - 2
	if _, _, err := readName(msg, last, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("readName through %d pointers: %v, want ErrMalformed", maxPointers+1, err)
	}
	got, _, err := readName(msg, 13, nil)
	if err != nil || string(got) != "." {
		t.Errorf("readName through one pointer = %q, %v; want the root", got, err)
	}
}

func TestTypeString(t *testing.T) {
	for code, want := range map[uint16]string{1: "A", 28: "AAAA", 255: "ANY", 257: "CAA", 64: "SVCB", 0: "TYPE0", 65535: "TYPE65535"} {
		if got := TypeString(code); got != want {
			t.Errorf("TypeString(%d) = %q, want %q", code, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(query("www.example.com", 1))
	f.Add(query("", 2))
	f.Add(query("a\x00b.\xffc", 65))
	f.Add([]byte{0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0xc0, 12, 0, 1})
	f.Fuzz(func(t *testing.T, msg []byte) {
		q, err := Parse(msg)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if q.Truncated != (errors.Is(err, ErrTruncated) && q.Name != "") {
				t.Fatalf("Truncated = %t with error %v and name %q", q.Truncated, err, q.Name)
			}
			if !q.Truncated && q != (Question{}) {
				t.Fatalf("non-zero Question %+v with error %v", q, err)
			}
		} else if q.Name == "" || q.Type == "" {
			t.Fatalf("Parse succeeded with %+v", q)
		}
		if len(q.Name) > MaxName {
			t.Fatalf("name of %d bytes", len(q.Name))
		}
		for i := 0; i < len(q.Name); i++ {
			if c := q.Name[i]; c <= ' ' || c >= 0x7f || ('A' <= c && c <= 'Z') {
				t.Fatalf("name %q has byte %#x", q.Name, c)
			}
		}
		if q.Name != "." && (strings.HasSuffix(q.Name, ".") && !strings.HasSuffix(q.Name, `\.`) || strings.HasPrefix(q.Name, ".")) {
			t.Fatalf("name %q has an empty label", q.Name)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	msg := query("api.github.com.svc.cluster.local", 28)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(msg); err != nil {
			b.Fatal(err)
		}
	}
}
