package wire

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// encode returns b as Encode writes it.
func encode(t testing.TB, b *Batch) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, b); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return buf.Bytes()
}

// compress gzips data as one member with the given header and level, so
// that tests can send JSON that Encode would never write.
func compress(t testing.TB, data []byte, hdr gzip.Header, level int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	zw.Header = hdr
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	return compress(t, data, gzip.Header{}, gzip.DefaultCompression)
}

// testJSON is testBatch as JSON, for tests that edit the JSON itself.
func testJSON(t testing.TB) []byte {
	t.Helper()
	data, err := json.Marshal(testBatch())
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	withText := testBatch()
	// Text JSON escapes or that a careless encoder would mangle.
	withText.Events[0].Process.Args = []string{"sh", "-c", `echo "<script>&amp;</script>" \ 'héllo' ✓ \u0041 ` + "\u2028"}
	withText.Events[0].Process.ArgsTruncated = true
	withText.Events[0].Process.Start = testTime.In(time.FixedZone("", -7*3600))
	withText.Events[1].DNS.Truncated = true

	for name, b := range map[string]*Batch{
		"realistic":        testBatch(),
		"escaped text":     withText,
		"no events":        {ID: strings.Repeat("f", 32), Node: "n", SentAt: testTime},
		"1000 events":      largeBatch(1000),
		"MaxEvents events": largeBatch(MaxEvents),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeBatch(bytes.NewReader(encode(t, b)))
			if err != nil {
				t.Fatalf("DecodeBatch: %v", err)
			}
			if diff := cmp.Diff(b, got); diff != "" {
				t.Errorf("DecodeBatch(Encode(b)) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeWritesGzipJSON(t *testing.T) {
	zr, err := gzip.NewReader(bytes.NewReader(encode(t, testBatch())))
	if err != nil {
		t.Fatalf("Encode did not write gzip: %v", err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("Encode did not write JSON: %v\n%s", err, data)
	}
	// The field names are the contract with servers of other versions.
	for _, key := range []string{"id", "node", "sensor", "sentAt", "dropped", "events"} {
		if _, ok := m[key]; !ok {
			t.Errorf("encoded batch has no %q: %s", key, data)
		}
	}
}

func TestEncodeReportsWriteError(t *testing.T) {
	errDisk := errors.New("disk full")
	err := Encode(failingWriter{errDisk}, testBatch())
	if !errors.Is(err, errDisk) {
		t.Errorf("Encode to a failing writer = %v, want it to wrap %v", err, errDisk)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestDecodeBatchRefuses(t *testing.T) {
	valid := testJSON(t)
	encoded := encode(t, testBatch())
	// edit returns valid with old replaced by new, failing if old is absent.
	edit := func(old, new string) []byte {
		if !bytes.Contains(valid, []byte(old)) {
			t.Fatalf("test JSON has no %q: %s", old, valid)
		}
		return bytes.Replace(valid, []byte(old), []byte(new), 1)
	}
	corrupt := bytes.Clone(encoded)
	corrupt[len(corrupt)-8] ^= 0xff // the CRC-32 of the trailer
	var zlibbed bytes.Buffer
	zw := zlib.NewWriter(&zlibbed)
	zw.Write(valid)
	zw.Close()
	invalid := testBatch()
	invalid.Events[0].Container.Digest = "sha256:latest"

	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"empty body", nil, "not gzip"},
		{"plain JSON", valid, "not gzip"},
		{"zlib", zlibbed.Bytes(), "not gzip"},
		{"gzip header only", encoded[:10], "reading batch"},
		{"truncated gzip", encoded[:len(encoded)/2], "reading batch"},
		{"gzip without trailer", encoded[:len(encoded)-8], "reading batch"},
		{"gzip with bad checksum", corrupt, "reading batch"},
		{"empty JSON", gzipped(t, nil), "EOF"},
		{"invalid JSON", gzipped(t, valid[:len(valid)-1]), "unexpected EOF"},
		{"not an object", gzipped(t, []byte(`[1,2]`)), "cannot unmarshal"},
		{"null", gzipped(t, []byte(`null`)), "batch id"},
		{"unknown field", gzipped(t, edit(`"id":`, `"admin":true,"id":`)), `unknown field "admin"`},
		{"unknown nested field", gzipped(t, edit(`"pid":4242,`, `"pid":4242,"cwd":"/",`)), `unknown field "cwd"`},
		{"wrong type", gzipped(t, edit(`"pid":4242`, `"pid":"4242"`)), "cannot unmarshal"},
		{"negative pid", gzipped(t, edit(`"pid":4242`, `"pid":-1`)), "cannot unmarshal"},
		{"pid over 32 bits", gzipped(t, edit(`"pid":4242`, `"pid":4294967296`)), "cannot unmarshal"},
		{"time not RFC 3339", gzipped(t, edit(`"time":"2025-11-25T10:30:00.123456789Z"`, `"time":"yesterday"`)), "time"},
		{"second batch after the batch", gzipped(t, append(append(bytes.Clone(valid), '\n'), valid...)), "data after the batch"},
		{"garbage after the batch", gzipped(t, append(bytes.Clone(valid), " x"...)), "data after the batch"},
		{"control character escaped in JSON", gzipped(t, edit(`"comm":"sh"`, `"comm":"sh\u001b[2J"`)), "process.comm has a control"},
		{"batch failing Validate", encode(t, invalid), "event 0: invalid sensor message: container.digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := DecodeBatch(bytes.NewReader(tt.body))
			if b != nil {
				t.Errorf("DecodeBatch returned a batch with error %v", err)
			}
			checkInvalid(t, err, tt.want)
		})
	}
}

// TestDecodeBatchInvalidUTF8 checks what Validate's text check relies on:
// JSON decoding replaces invalid UTF-8 rather than passing it on.
func TestDecodeBatchInvalidUTF8(t *testing.T) {
	data := bytes.Replace(testJSON(t), []byte(`"comm":"sh"`), []byte("\"comm\":\"s\xffh\""), 1)
	b, err := DecodeBatch(bytes.NewReader(gzipped(t, data)))
	if err != nil {
		t.Fatalf("DecodeBatch: %v", err)
	}
	if got, want := b.Events[0].Process.Comm, "s\uFFFDh"; got != want {
		t.Errorf("comm = %q, want %q", got, want)
	}
}

func TestDecodeBatchPassesOnReadErrors(t *testing.T) {
	errReset := errors.New("connection reset by peer")
	encoded := encode(t, testBatch())
	for _, n := range []int{0, 5, len(encoded) / 2} {
		_, err := DecodeBatch(io.MultiReader(bytes.NewReader(encoded[:n]), errorReader{errReset}))
		if !errors.Is(err, errReset) || !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeBatch of a body failing after %d bytes = %v, want it to wrap %v and ErrInvalid", n, err, errReset)
		}
	}
}

type errorReader struct{ err error }

func (r errorReader) Read([]byte) (int, error) { return 0, r.err }

// TestDecodeBatchGzipBomb sends a small body that decompresses to far more
// than MaxBatchBytes: DecodeBatch must stop at the limit, not inflate it.
func TestDecodeBatchGzipBomb(t *testing.T) {
	const size = 256 << 20
	for name, fill := range map[string]byte{"zeros": 0, "spaces": ' '} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
			if err != nil {
				t.Fatal(err)
			}
			// Spaces are valid JSON whitespace: a decoder that
			// streamed the JSON would still be reading them.
			zw.Write([]byte("{"))
			chunk := bytes.Repeat([]byte{fill}, 1<<20)
			for range size / len(chunk) {
				zw.Write(chunk)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			if buf.Len() > MaxCompressedBytes {
				t.Fatalf("bomb is %d bytes compressed, want it under MaxCompressedBytes", buf.Len())
			}
			body := buf.Bytes()

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err = DecodeBatch(bytes.NewReader(body))
			runtime.ReadMemStats(&after)

			checkInvalid(t, err, "batch exceeds its size limit")
			// Reading up to the limit costs a few times the limit;
			// inflating the bomb would cost its full size.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*MaxBatchBytes {
				t.Errorf("DecodeBatch of a %d MiB bomb allocated %d MiB, want at most %d MiB", size>>20, alloc>>20, 4*MaxBatchBytes>>20)
			}
		})
	}
}

// TestDecodeBatchJSONLimit checks MaxBatchBytes to the byte, padding a
// valid batch with JSON whitespace.
func TestDecodeBatchJSONLimit(t *testing.T) {
	valid := testJSON(t)
	padded := func(size int) []byte {
		return append(bytes.Clone(valid), bytes.Repeat([]byte{' '}, size-len(valid))...)
	}
	if _, err := DecodeBatch(bytes.NewReader(gzipped(t, padded(MaxBatchBytes)))); err != nil {
		t.Errorf("DecodeBatch of exactly MaxBatchBytes of JSON = %v, want nil", err)
	}
	_, err := DecodeBatch(bytes.NewReader(gzipped(t, padded(MaxBatchBytes+1))))
	checkInvalid(t, err, "batch exceeds its size limit")
}

// TestDecodeBatchCompressedLimit checks MaxCompressedBytes: a body of
// exactly the limit passes, one a few bytes longer does not.
func TestDecodeBatchCompressedLimit(t *testing.T) {
	if got := len(paddedBody(t, MaxCompressedBytes)); got != MaxCompressedBytes {
		t.Fatalf("paddedBody made %d bytes, want %d", got, MaxCompressedBytes)
	}
	if _, err := DecodeBatch(bytes.NewReader(paddedBody(t, MaxCompressedBytes))); err != nil {
		t.Errorf("DecodeBatch of exactly MaxCompressedBytes = %v, want nil", err)
	}
	_, err := DecodeBatch(bytes.NewReader(paddedBody(t, MaxCompressedBytes+2)))
	checkInvalid(t, err, "compressed batch exceeds its size limit")

	// Incompressible data, as an attacker would send to make the
	// server read: refused at the compressed limit, well before the
	// decompressed one.
	noise := make([]byte, 2*MaxCompressedBytes)
	rand.Read(noise)
	_, err = DecodeBatch(bytes.NewReader(compress(t, noise, gzip.Header{}, gzip.NoCompression)))
	checkInvalid(t, err, "compressed batch exceeds its size limit")
}

// paddedBody returns a gzip body of exactly size bytes holding a valid
// batch: JSON whitespace stored uncompressed gets it close, the gzip
// header's extra field, whose length is free, makes up the rest.
func paddedBody(t testing.TB, size int) []byte {
	t.Helper()
	valid := testJSON(t)
	data := append(bytes.Clone(valid), bytes.Repeat([]byte{' '}, size-len(valid)-1<<15)...)
	base := len(compress(t, data, gzip.Header{Extra: []byte{}}, gzip.NoCompression))
	extra := size - base
	if extra < 0 || extra > 0xffff {
		t.Fatalf("cannot pad a %d-byte body to %d bytes", base, size)
	}
	return compress(t, data, gzip.Header{Extra: make([]byte, extra)}, gzip.NoCompression)
}

// TestDecodeBatchSecondMember checks a body of two gzip members, which a
// multistream reader would concatenate: the second member's batch must
// never reach the caller, merged or instead of the first.
func TestDecodeBatchSecondMember(t *testing.T) {
	first := testBatch()
	second := largeBatch(2)
	second.ID = strings.Repeat("e", 32)
	body := append(encode(t, first), encode(t, second)...)

	got, err := DecodeBatch(bytes.NewReader(body))
	if err != nil {
		checkInvalid(t, err)
		return
	}
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("DecodeBatch of two members returned other than the first (-want +got):\n%s", diff)
	}
}

// FuzzDecodeBatch feeds DecodeBatch hostile bodies. With compress set the
// input is JSON, gzipped by the harness, so that the fuzzer explores the
// JSON and the schema rather than failing gzip checksums; without it the
// input is the body itself, for the gzip layer.
func FuzzDecodeBatch(f *testing.F) {
	valid := testJSON(f)
	for _, b := range []*Batch{testBatch(), largeBatch(4), {ID: strings.Repeat("0", 32), Node: "n", SentAt: testTime}} {
		data, err := json.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, true)
		f.Add(encode(f, b), false)
	}
	encoded := encode(f, testBatch())
	for _, data := range [][]byte{
		nil,
		[]byte(`null`),
		[]byte(`{}`),
		[]byte(`{"id":"0123456789abcdef0123456789abcdef","node":"n","events":[null]}`),
		[]byte(`{"id":"0123456789abcdef0123456789abcdef","node":"n","events":[{"kind":"dns","time":"2025-01-01T00:00:00Z","process":{"pid":1,"uid":0},"dns":{"name":"a\u0000b","type":"A"}}]}`),
		[]byte(`{"id":"0123456789abcdef0123456789abcdef","node":"n","events":[{"kind":"connect","time":"9999-12-31T23:59:59-23:59","process":{"pid":1,"uid":0},"remote":"[::ffff:1.2.3.4%x]:0"}]}`),
		[]byte(`{"id":"0123456789abcdef0123456789abcdef","ID":"ffffffffffffffffffffffffffffffff","node":"n"}`),
		append(bytes.Clone(valid), valid...),
		append(bytes.Clone(valid), '}'),
		bytes.Replace(valid, []byte(`"comm":"sh"`), []byte("\"comm\":\"s\xffh\""), 1),
	} {
		f.Add(data, true)
	}
	f.Add(encoded[:len(encoded)/2], false)
	f.Add(append(bytes.Clone(encoded), encoded...), false)
	f.Add(valid, false)

	f.Fuzz(func(t *testing.T, data []byte, compressIt bool) {
		body := data
		if compressIt {
			body = compress(t, data, gzip.Header{}, gzip.BestSpeed)
		}
		b, err := DecodeBatch(bytes.NewReader(body))
		if err != nil {
			if b != nil {
				t.Fatalf("DecodeBatch returned a batch with error %v", err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("DecodeBatch error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if err := b.Validate(); err != nil {
			t.Fatalf("DecodeBatch returned a batch failing Validate: %v", err)
		}
		var buf bytes.Buffer
		if err := Encode(&buf, b); err != nil {
			t.Fatalf("Encode of a decoded batch: %v", err)
		}
		again, err := DecodeBatch(&buf)
		if err != nil {
			t.Fatalf("DecodeBatch of a re-encoded batch: %v", err)
		}
		if diff := cmp.Diff(b, again); diff != "" {
			t.Fatalf("re-encoding changed the batch (-decoded +again):\n%s", diff)
		}
	})
}

func BenchmarkDecodeBatch(b *testing.B) {
	batch := largeBatch(1000)
	body := encode(b, batch)
	data, err := json.Marshal(batch)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	// Throughput in JSON bytes, what the server's CPU goes to.
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeBatch(bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(body)), "body-bytes")
}

func BenchmarkEncode(b *testing.B) {
	batch := largeBatch(1000)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := Encode(&buf, batch); err != nil {
			b.Fatal(err)
		}
	}
}
