package testenv

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// EventSource is what the node sensor's event sources have in common.
type EventSource[E any] interface {
	Read(ctx context.Context) (E, error)
	Close() error
}

// Stream reads src on a goroutine and delivers its events on the returned
// channel (of buffer events) until t ends; then it stops reading and
// closes src. A record wrapping malformed fails the test and reading goes
// on; a full channel fails the test and drops the event.
func Stream[E any](t testing.TB, src EventSource[E], malformed error, buffer int) <-chan E {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan E, buffer)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			e, err := src.Read(ctx)
			if errors.Is(err, malformed) {
				t.Errorf("Read: %v", err)
				continue
			}
			if err != nil {
				return
			}
			select {
			case ch <- e:
			default:
				t.Errorf("test event buffer full, dropping %+v", e)
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if err := src.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return ch
}

// Logger is a text logger writing to t's log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, nil))
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}
