package wire

import (
	"bytes"
	"testing"
)

// A stray closing bracket after the batch is trailing data too.
func TestDecodeBatchRefusesTrailingCloser(t *testing.T) {
	for _, tail := range []string{"}", "]", " ]]]}}}"} {
		_, err := DecodeBatch(bytes.NewReader(gzipped(t, append(testJSON(t), tail...))))
		if err == nil {
			t.Errorf("DecodeBatch of a batch followed by %q = nil, want ErrInvalid (data after the batch)", tail)
		}
	}
}

// Whatever follows the gzip member is refused, another batch included.
func TestDecodeBatchRefusesDataAfterMember(t *testing.T) {
	enc := encode(t, testBatch())
	for name, tail := range map[string][]byte{"second member": encode(t, largeBatch(2)), "garbage": []byte("garbage")} {
		_, err := DecodeBatch(bytes.NewReader(append(bytes.Clone(enc), tail...)))
		if err == nil {
			t.Errorf("DecodeBatch of a gzip member followed by %s = nil, want ErrInvalid", name)
		}
	}
}

// One byte over the compressed limit is refused.
func TestDecodeBatchCompressedLimitExact(t *testing.T) {
	if _, err := DecodeBatch(bytes.NewReader(paddedBody(t, MaxCompressedBytes+1))); err == nil {
		t.Errorf("DecodeBatch of MaxCompressedBytes+1 = nil, want ErrInvalid")
	}
}
