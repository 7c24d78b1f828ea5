package auditlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

const (
	apiVersion    = "audit.k8s.io/v1"
	kindEvent     = "Event"
	kindEventList = "EventList"
)

// ParseEventList decodes an audit.k8s.io/v1 EventList — a webhook request
// body — and redacts each event. It rejects bodies over MaxBodySize, lists
// of more than MaxEvents and events without an auditID, a known level or a
// known stage. Errors wrap ErrMalformed or ErrTooLarge and never quote the
// input.
func ParseEventList(data []byte) ([]Event, error) {
	if len(data) > MaxBodySize {
		return nil, fmt.Errorf("%w: event list of %d bytes, limit %d", ErrTooLarge, len(data), MaxBodySize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, fmt.Errorf("%w: event list: %w", ErrMalformed, err)
	}
	var (
		version, kind string
		events        []Event
		seenItems     bool
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: decoding event list: %w", ErrMalformed, err)
		}
		key, _ := tok.(string)
		field := key
		switch key {
		case "apiVersion":
			err = dec.Decode(&version)
		case "kind":
			err = dec.Decode(&kind)
		case "items":
			if seenItems {
				return nil, fmt.Errorf("%w: event list has items twice", ErrMalformed)
			}
			seenItems = true
			events, err = decodeItems(dec)
		default:
			field = "(unknown)"
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: decoding event list field %s: %w", ErrMalformed, field, err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, fmt.Errorf("%w: event list: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the event list", ErrMalformed)
	}
	if version != apiVersion || kind != kindEventList {
		return nil, fmt.Errorf("%w: not an %s %s", ErrMalformed, apiVersion, kindEventList)
	}
	if !seenItems {
		return nil, fmt.Errorf("%w: event list has no items field", ErrMalformed)
	}
	return events, nil
}

// decodeItems decodes the items array one event at a time, so that a list
// of many tiny items fails at MaxEvents instead of allocating them all.
func decodeItems(dec *json.Decoder) ([]Event, error) {
	if err := expectDelim(dec, '['); err != nil {
		return nil, err
	}
	var events []Event
	for i := 0; dec.More(); i++ {
		if i == MaxEvents {
			return nil, fmt.Errorf("%w: more than %d events", ErrTooLarge, MaxEvents)
		}
		var e Event
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		if err := validate(&e, false); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		Redact(&e)
		events = append(events, e)
	}
	return events, expectDelim(dec, ']')
}

// ParseLine decodes one line of a JSON-lines audit log — an
// audit.k8s.io/v1 Event — and redacts it.
func ParseLine(line []byte) (Event, error) {
	if len(line) > MaxLineSize {
		return Event{}, fmt.Errorf("%w: line of %d bytes, limit %d", ErrTooLarge, len(line), MaxLineSize)
	}
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return Event{}, fmt.Errorf("%w: line is not a JSON object", ErrMalformed)
	}
	var e Event
	if err := json.Unmarshal(line, &e); err != nil {
		return Event{}, fmt.Errorf("%w: decoding event: %w", ErrMalformed, err)
	}
	if err := validate(&e, true); err != nil {
		return Event{}, err
	}
	Redact(&e)
	return e, nil
}

// validate checks what every event kube-apiserver writes has. Items of an
// EventList may leave out their type meta; a log line may not.
func validate(e *Event, typed bool) error {
	if typed || e.APIVersion != "" || e.Kind != "" {
		if e.APIVersion != apiVersion || e.Kind != kindEvent {
			return fmt.Errorf("%w: not an %s %s", ErrMalformed, apiVersion, kindEvent)
		}
	}
	if e.AuditID == "" {
		return fmt.Errorf("%w: event without auditID (null or empty)", ErrMalformed)
	}
	switch e.Level {
	case auditv1.LevelNone, auditv1.LevelMetadata, auditv1.LevelRequest, auditv1.LevelRequestResponse:
	default:
		return fmt.Errorf("%w: event with unknown level", ErrMalformed)
	}
	switch e.Stage {
	case auditv1.StageRequestReceived, auditv1.StageResponseStarted, auditv1.StageResponseComplete, auditv1.StagePanic:
	default:
		return fmt.Errorf("%w: event with unknown stage", ErrMalformed)
	}
	return nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q", string(want))
	}
	return nil
}
