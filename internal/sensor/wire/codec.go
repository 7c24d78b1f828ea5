package wire

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ContentType is the media type of an encoded batch; it travels with
// Content-Encoding: gzip.
const ContentType = "application/json"

// Encode writes b as gzip-compressed JSON.
func Encode(w io.Writer, b *Batch) error {
	// The fastest level: batches are small and JSON compresses well even
	// so, and this runs on every node.
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return fmt.Errorf("compressing sensor batch: %w", err)
	}
	if err := json.NewEncoder(zw).Encode(b); err != nil {
		return fmt.Errorf("encoding sensor batch: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compressing sensor batch: %w", err)
	}
	return nil
}

// DecodeBatch reads one gzip-compressed batch, refusing more than
// MaxCompressedBytes on the wire or MaxBatchBytes of JSON, unknown fields
// and trailing data, and validates it. Every error wraps ErrInvalid.
func DecodeBatch(r io.Reader) (*Batch, error) {
	// The buffered reader is what gzip reads the member from, so that
	// whatever follows the member (and the limit's error) is seen below.
	br := bufio.NewReader(&limitReader{r: r, n: MaxCompressedBytes, what: "compressed batch"})
	zr, err := gzip.NewReader(br)
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: not gzip: %w", ErrInvalid, err)
	}
	defer zr.Close()
	zr.Multistream(false)
	data, err := io.ReadAll(&limitReader{r: zr, n: MaxBatchBytes, what: "batch"})
	if err != nil {
		if errors.Is(err, ErrInvalid) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: reading batch: %w", ErrInvalid, err)
	}
	switch _, err := br.ReadByte(); {
	case err == nil:
		return nil, fmt.Errorf("%w: data after the compressed batch", ErrInvalid)
	case errors.Is(err, ErrInvalid):
		return nil, err
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%w: reading batch: %w", ErrInvalid, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Batch
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	// More() misses a stray closing bracket; anything but white space
	// after the batch is refused.
	if len(bytes.TrimSpace(data[dec.InputOffset():])) != 0 {
		return nil, fmt.Errorf("%w: data after the batch", ErrInvalid)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

// limitReader fails, rather than stops, once more than n bytes are read.
type limitReader struct {
	r    io.Reader
	n    int64
	what string
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, fmt.Errorf("%w: %s exceeds its size limit", ErrInvalid, l.what)
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, fmt.Errorf("%w: %s exceeds its size limit", ErrInvalid, l.what)
	}
	return n, err
}
