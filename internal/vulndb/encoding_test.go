package vulndb

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bulwarkhq/bulwark/internal/model"
)

func TestEntryEncodingRoundTrip(t *testing.T) {
	e := entry{
		ID: "GO-2023-2102",
		Ranges: []Range{
			{Type: RangeSemver, Events: []Event{{Introduced: "0"}, {Fixed: "1.20.10"}, {Introduced: "1.21.0-0"}, {LastAffected: "1.21.2"}}},
			{Type: RangeEcosystem, Events: []Event{{Introduced: "1.0"}}},
		},
		Versions: []string{"1.0", "1.1"},
		Severity: Score{Rating: model.SeverityHigh, Score: 7.5, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", Source: "CVSS_V3"},
	}
	got, err := decodeEntry(encodeEntry(&e))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestEntryEncodingDropsLimitEvents(t *testing.T) {
	e := entry{ID: "X", Ranges: []Range{{Type: RangeSemver, Events: []Event{{Introduced: "0"}, {Limit: "abc"}}}}}
	got, err := decodeEntry(encodeEntry(&e))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Ranges[0].Events) != 1 {
		t.Errorf("events = %+v, want the limit dropped", got.Ranges[0].Events)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	f.Add(encodeEntry(&entry{ID: "A", Ranges: []Range{{Type: RangeEcosystem, Events: []Event{{Introduced: "0"}, {Fixed: "1"}}}}, Versions: []string{"0.5"}}))
	f.Add([]byte{entryEncoding, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeEntry(data)
		if err != nil {
			return
		}
		if _, err := decodeEntry(encodeEntry(&e)); err != nil {
			t.Fatalf("re-encoding a decoded entry fails: %v", err)
		}
	})
}
