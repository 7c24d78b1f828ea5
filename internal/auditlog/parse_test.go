package auditlog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fixtureSecrets are the values testdata holds unredacted.
var fixtureSecrets = []string{secretValue, base64.StdEncoding.EncodeToString([]byte(secretValue)), configValue, appliedValue}

func summary(events []Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, fmt.Sprintf("%s %s/%s %s redacted=%s", e.Verb, e.ObjectRef.Resource, e.ObjectRef.Subresource, e.ObjectRef.Name, e.Annotations[RedactedAnnotation]))
	}
	return out
}

var wantFixture = []string{
	"create serviceaccounts/ default redacted=",
	"create secrets/ db redacted=requestObject,responseObject",
	"create secrets/ applied redacted=requestObject,responseObject",
	"create configmaps/ settings redacted=requestObject,responseObject",
	"list secrets/  redacted=responseObject",
	"create serviceaccounts/ robot redacted=",
	"create serviceaccounts/token robot redacted=responseObject",
}

func assertNoSecrets(t *testing.T, events []Event) {
	t.Helper()
	out, err := json.Marshal(events)
	if err != nil {
		t.Fatalf("marshalling events: %v", err)
	}
	for _, s := range fixtureSecrets {
		if bytes.Contains(out, []byte(s)) {
			t.Errorf("%q survived", s)
		}
	}
}

func TestParseEventListFixture(t *testing.T) {
	data, err := os.ReadFile("testdata/eventlist.json")
	if err != nil {
		t.Fatal(err)
	}
	events, err := ParseEventList(data)
	if err != nil {
		t.Fatalf("ParseEventList: %v", err)
	}
	if diff := cmp.Diff(wantFixture, summary(events)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	assertNoSecrets(t, events)
}

func TestParseLineFixture(t *testing.T) {
	data, err := os.ReadFile("testdata/audit.log")
	if err != nil {
		t.Fatal(err)
	}
	var events []Event
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		e, err := ParseLine(line)
		if err != nil {
			t.Fatalf("ParseLine: %v", err)
		}
		events = append(events, e)
	}
	if diff := cmp.Diff(wantFixture, summary(events)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	assertNoSecrets(t, events)
}

const minimalEvent = `{"level":"Metadata","auditID":"%d","stage":"ResponseComplete","verb":"get"}`

func eventList(items ...string) string {
	return `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[` + strings.Join(items, ",") + `]}`
}

func TestParseEventListRejects(t *testing.T) {
	many := make([]string, MaxEvents+1)
	for i := range many {
		many[i] = fmt.Sprintf(minimalEvent, i)
	}
	ok := fmt.Sprintf(minimalEvent, 1)
	tests := []struct {
		name, body string
		want       error
	}{
		{"not JSON", "PAYLOAD-MARKER", ErrMalformed},
		{"array", "[" + ok + "]", ErrMalformed},
		{"wrong kind", strings.Replace(eventList(ok), "EventList", "PodList", 1), ErrMalformed},
		{"wrong apiVersion", strings.Replace(eventList(ok), "audit.k8s.io/v1", "audit.k8s.io/v1beta1", 1), ErrMalformed},
		{"no items", `{"kind":"EventList","apiVersion":"audit.k8s.io/v1"}`, ErrMalformed},
		{"null items", `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":null}`, ErrMalformed},
		{"null item", eventList(ok, "null"), ErrMalformed},
		{"items twice", `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[],"items":[]}`, ErrMalformed},
		{"item of wrong kind", eventList(`{"kind":"Pod","apiVersion":"v1","level":"Metadata","auditID":"1","stage":"ResponseComplete"}`), ErrMalformed},
		{"unknown level", eventList(`{"level":"PAYLOAD-MARKER","auditID":"1","stage":"ResponseComplete"}`), ErrMalformed},
		{"unknown stage", eventList(`{"level":"Metadata","auditID":"1","stage":"PAYLOAD-MARKER"}`), ErrMalformed},
		{"wrong type", eventList(`{"level":"Metadata","auditID":"1","stage":"ResponseComplete","sourceIPs":"PAYLOAD-MARKER"}`), ErrMalformed},
		{"trailing data", eventList(ok) + "PAYLOAD-MARKER", ErrMalformed},
		{"too many events", eventList(many...), ErrTooLarge},
		{"too large", eventList(`{"x":"` + strings.Repeat("A", MaxBodySize) + `"}`), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, err := ParseEventList([]byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseEventList() = %d events, %v; want %v", len(events), err, tt.want)
			}
			if strings.Contains(err.Error(), "PAYLOAD-MARKER") {
				t.Errorf("error quotes the input: %v", err)
			}
		})
	}
}

func TestParseEventListAcceptsEmpty(t *testing.T) {
	events, err := ParseEventList([]byte(eventList()))
	if err != nil || len(events) != 0 {
		t.Fatalf("ParseEventList(empty) = %v, %v", events, err)
	}
}

func TestParseLineRejects(t *testing.T) {
	for name, line := range map[string]string{
		"empty":        "",
		"not JSON":     "PAYLOAD-MARKER",
		"null":         "null",
		"no type meta": fmt.Sprintf(minimalEvent, 1),
		"event list":   eventList(),
		"trailing":     `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"1","stage":"ResponseComplete"} x`,
		"no auditID":   `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","stage":"ResponseComplete"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseLine([]byte(line)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseLine() error = %v, want ErrMalformed", err)
			}
		})
	}
}

func FuzzParseEventList(f *testing.F) {
	if data, err := os.ReadFile("testdata/eventlist.json"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(eventList(fmt.Sprintf(minimalEvent, 1), "null")))
	f.Add([]byte(eventList(`{"level":"Metadata","auditID":"1","stage":"ResponseComplete","objectRef":{"resource":"secrets"},"requestObject":{"data":{"a":"b"}},"responseObject":[1]}`)))
	f.Add([]byte(`{"items":[{}],"kind":"EventList","apiVersion":"audit.k8s.io/v1","x":{"y":[null]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := ParseEventList(data)
		if err != nil {
			return
		}
		if len(events) > MaxEvents {
			t.Fatalf("%d events accepted", len(events))
		}
		if _, err := json.Marshal(events); err != nil {
			t.Fatalf("parsed events do not marshal: %v", err)
		}
	})
}

// BenchmarkParseEventList decodes and redacts a 1,000-event batch built
// from the real events in testdata.
func BenchmarkParseEventList(b *testing.B) {
	data, err := os.ReadFile("testdata/eventlist.json")
	if err != nil {
		b.Fatal(err)
	}
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		b.Fatal(err)
	}
	items := make([]string, 1000)
	for i := range items {
		it := list.Items[i%len(list.Items)]
		it["auditID"] = fmt.Sprintf("id-%d", i)
		raw, err := json.Marshal(it)
		if err != nil {
			b.Fatal(err)
		}
		items[i] = string(raw)
	}
	body := []byte(eventList(items...))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEventList(body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "events/s")
}
