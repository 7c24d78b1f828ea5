package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/sensor/wire"
)

// cutQueueEvents bounds the events in batches cut by Send and not yet
// written to the spool (at least cutQueueMin batches): past it Send drops
// rather than blocks or grows memory. It absorbs a burst while the
// batcher encodes.
const (
	cutQueueEvents = 32 << 10
	cutQueueMin    = 4
)

// sizeLimits are the server's limits on a batch (wire.MaxCompressedBytes
// and wire.MaxBatchBytes); a variable so that tests can make splitting
// cheap to exercise.
var sizeLimits = struct{ compressed, json int }{wire.MaxCompressedBytes, wire.MaxBatchBytes}

// Client batches a sensor's events, spools them and sends them to the
// server. Send, ReportDropped and Stats are safe for concurrent use.
type Client struct {
	opts     Options
	log      *slog.Logger
	base     string
	http     *http.Client
	credPath string
	spool    *spool
	lock     *os.File

	mu      sync.Mutex
	pending []wire.Event
	armed   bool // a time cut is scheduled for pending
	closed  bool

	cuts  chan []wire.Event // full batches from Send
	arm   chan struct{}     // pending became non-empty
	flush chan chan struct{}
	// spooled wakes the sender; progress wakes Close when a file leaves
	// the spool.
	spooled  chan struct{}
	progress chan struct{}
	slices   sync.Pool
	encoded  bytes.Buffer // the batcher's encoding buffer

	// droppedSince counts events lost since the last batch written to the
	// spool: it becomes that batch's Dropped.
	droppedSince atomic.Uint64
	spoolFull    atomic.Bool

	stats   counters
	metrics []prometheus.Collector

	stopBatcher chan struct{}
	cancelSend  context.CancelFunc
	batcherDone chan struct{}
	senderDone  chan struct{}
	closeOnce   sync.Once
	closeErr    error
}

// counters back Stats and the Prometheus metrics.
type counters struct {
	sentEvents, sentBatches, duplicates atomic.Uint64
	dropped, rejected, corrupt          atomic.Uint64
	sendErrors, enrolments              atomic.Uint64
	unauthorized                        atomic.Bool

	mu        sync.Mutex
	lastError string
	lastAt    time.Time
}

// Stats is a snapshot of a Client's counters.
type Stats struct {
	// SentEvents and SentBatches count what the server acknowledged;
	// Duplicates the batches it already had (a resend).
	SentEvents, SentBatches, Duplicates uint64
	// Dropped counts events lost because the spool (or the queue in
	// front of it) was full, or sent after Close.
	Dropped uint64
	// Rejected counts events discarded because the server refused their
	// batch for good (HTTP 400 or 413) or, in a batch refused as invalid,
	// because they fail wire's validation (the rest are sent again).
	Rejected uint64
	// CorruptFiles counts spool files set aside as unreadable; their
	// events are unknown.
	CorruptFiles uint64
	// SendErrors counts failed attempts to send a batch or to enrol.
	SendErrors uint64
	// Enrolments counts successful enrolments by this Client.
	Enrolments uint64
	// SpoolBytes and SpoolFiles are the spool's current size.
	SpoolBytes int64
	SpoolFiles int
	// Unauthorized says the server refused the credential and the client
	// could not enrol again; it keeps spooling meanwhile.
	Unauthorized bool
	// LastError is the last delivery error, and LastErrorAt its time.
	LastError   string
	LastErrorAt time.Time
}

// New checks the options, opens the state directory and the spool, and
// starts the goroutines that batch and send. It does not wait for the
// server: enrolment and delivery happen in the background.
func New(opts Options) (*Client, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	base, err := serverBase(o.Server)
	if err != nil {
		return nil, err
	}
	hc, err := newHTTPClient(&o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	lock, err := lockStateDir(o.StateDir)
	if err != nil {
		return nil, err
	}
	c := &Client{
		opts:        o,
		log:         o.Logger,
		base:        base,
		http:        hc,
		credPath:    filepath.Join(o.StateDir, credentialFile),
		lock:        lock,
		cuts:        make(chan []wire.Event, max(cutQueueMin, cutQueueEvents/o.BatchEvents)),
		arm:         make(chan struct{}, 1),
		flush:       make(chan chan struct{}),
		spooled:     make(chan struct{}, 1),
		progress:    make(chan struct{}, 1),
		stopBatcher: make(chan struct{}),
		batcherDone: make(chan struct{}),
		senderDone:  make(chan struct{}),
	}
	fail := func(err error) (*Client, error) {
		lock.Close()
		return nil, err
	}
	cred, err := loadCredential(c.credPath)
	if err != nil {
		if !o.hasToken() {
			return fail(err)
		}
		c.log.Warn("enrolling again: the stored credential is unusable", "error", err)
		cred = nil
	}
	if cred != nil && (cred.Server != base || cred.Node != o.Node) {
		c.log.Info("enrolling again: the stored credential is for another server or node",
			"storedServer", cred.Server, "storedNode", cred.Node)
		cred = nil
	}
	if cred == nil && !o.hasToken() {
		return fail(fmt.Errorf("no credential for %s in %s and no enrolment token to get one", base, o.StateDir))
	}
	if cred != nil {
		// The file is a secret; tighten a mode loosened by hand.
		if err := os.Chmod(c.credPath, 0o600); err != nil {
			return fail(fmt.Errorf("restricting credential file: %w", err))
		}
	}
	c.spool, err = openSpool(filepath.Join(o.StateDir, "spool"), o.SpoolBytes, o.SpoolFiles, c.log)
	if err != nil {
		return fail(err)
	}
	if err := c.registerMetrics(o.Registerer); err != nil {
		return fail(err)
	}
	if o.InsecureSkipVerify {
		c.log.Warn("not verifying the server's TLS certificate (InsecureSkipVerify)", "server", base)
	}
	c.pending = c.newSlice()
	ctx, cancel := context.WithCancel(context.Background())
	c.cancelSend = cancel
	go c.runBatcher()
	go c.runSender(ctx, cred)
	return c, nil
}

// Send queues one event. It never blocks on the disk or the network: when
// the spool is full the event is dropped and counted instead.
func (c *Client) Send(ev wire.Event) {
	if c.spoolFull.Load() {
		c.drop(1)
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.drop(1)
		return
	}
	c.pending = append(c.pending, ev)
	if len(c.pending) >= c.opts.BatchEvents {
		full := c.pending
		c.pending = c.newSlice()
		c.armed = false
		// Queued under the lock, so that Close, which flushes after
		// setting closed, cannot miss a batch.
		var queued bool
		select {
		case c.cuts <- full:
			queued = true
		default:
		}
		c.mu.Unlock()
		if !queued {
			c.drop(uint64(len(full)))
			c.recycle(full)
		}
		return
	}
	arm := !c.armed
	c.armed = true
	c.mu.Unlock()
	if arm {
		c.wakeBatcher()
	}
}

// ReportDropped adds events the sensor lost before they reached Send (a
// ring buffer overrun, say) to the Dropped count of the next batch.
func (c *Client) ReportDropped(n uint64) {
	if n == 0 {
		return
	}
	c.droppedSince.Add(n)
	c.armTimer()
}

// drop loses n events that could not be queued.
func (c *Client) drop(n uint64) {
	c.stats.dropped.Add(n)
	c.droppedSince.Add(n)
	c.armTimer()
}

// armTimer makes sure a batch is cut within BatchInterval, so that a
// Dropped count reaches the server even when no events follow.
func (c *Client) armTimer() {
	c.mu.Lock()
	arm := !c.armed
	c.armed = true
	c.mu.Unlock()
	if arm {
		c.wakeBatcher()
	}
}

func (c *Client) wakeBatcher() {
	select {
	case c.arm <- struct{}{}:
	default:
	}
}

func (c *Client) newSlice() []wire.Event {
	if s, ok := c.slices.Get().(*[]wire.Event); ok {
		return (*s)[:0]
	}
	return make([]wire.Event, 0, c.opts.BatchEvents)
}

func (c *Client) recycle(s []wire.Event) {
	clear(s) // drop the references the events hold
	s = s[:0]
	c.slices.Put(&s)
}

// runBatcher writes batches into the spool: those Send cut at BatchEvents
// and, BatchInterval after the first event of a batch, the rest.
func (c *Client) runBatcher() {
	defer close(c.batcherDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case evs := <-c.cuts:
			c.store(evs)
		case <-c.arm:
			timer.Reset(c.opts.BatchInterval)
		case <-timer.C:
			if c.cutOnTime() {
				timer.Reset(c.opts.BatchInterval)
			}
		case done := <-c.flush:
			c.drainCuts()
			c.cutPending()
			close(done)
		case <-c.stopBatcher:
			return
		}
	}
}

func (c *Client) drainCuts() {
	for {
		select {
		case evs := <-c.cuts:
			c.store(evs)
		default:
			return
		}
	}
}

// cutOnTime cuts the pending batch; it reports whether to look again
// later, which it does while a Dropped count waits for room in the spool.
func (c *Client) cutOnTime() bool {
	c.mu.Lock()
	if len(c.pending) == 0 && c.spoolFull.Load() && c.droppedSince.Load() > 0 {
		c.mu.Unlock()
		return true
	}
	c.mu.Unlock()
	c.cutPending()
	return false
}

// cutPending writes what is pending, if anything, as a batch.
func (c *Client) cutPending() {
	c.mu.Lock()
	evs := c.pending
	c.pending = c.newSlice()
	c.armed = false
	c.mu.Unlock()
	c.store(evs)
}

// store batches, encodes and spools events, with the Dropped count
// accumulated since the previous batch. Events are not validated here:
// that would cost a quarter of the pipeline for events the sensor built
// itself; the rare batch the server refuses is salvaged instead (see
// salvage).
func (c *Client) store(evs []wire.Event) {
	defer c.recycle(evs)
	dropped := c.droppedSince.Swap(0)
	if len(evs) == 0 && dropped == 0 {
		return
	}
	c.spoolBatch(evs, dropped)
}

// spoolBatch encodes one batch and writes it to the spool, halving it
// while it exceeds the server's size limits.
func (c *Client) spoolBatch(evs []wire.Event, dropped uint64) {
	b := wire.Batch{
		ID:      newBatchID(),
		Node:    c.opts.Node,
		Sensor:  c.opts.Sensor,
		SentAt:  time.Now().UTC(),
		Dropped: dropped,
		Events:  evs,
	}
	c.encoded.Reset()
	err := wire.Encode(&c.encoded, &b)
	if err == nil && oversized(c.encoded.Bytes()) {
		if len(evs) > 1 {
			half := len(evs) / 2
			c.spoolBatch(evs[:half], dropped)
			c.spoolBatch(evs[half:], 0)
			return
		}
		err = errors.New("one event exceeds the size limits of a batch")
	}
	if err != nil {
		// Only a broken invariant gets here; the events are lost and
		// accounted as rejected, the carried Dropped count kept.
		c.stats.rejected.Add(uint64(len(evs)))
		c.droppedSince.Add(dropped)
		c.log.Error("discarding a batch that cannot be encoded", "events", len(evs), "error", err)
		return
	}
	err = c.spool.add(c.encoded.Bytes(), len(evs))
	if err == nil {
		select {
		case c.spooled <- struct{}{}:
		default:
		}
		return
	}
	// Dropping the newest events keeps what is already spooled; the
	// count travels in a later batch.
	if errors.Is(err, errSpoolFull) {
		if !c.spoolFull.Swap(true) {
			bytes, files := c.spool.usage()
			c.log.Warn("spool full: dropping new events until the server catches up",
				"spoolBytes", bytes, "spoolFiles", files)
		}
	} else {
		c.log.Error("dropping a batch the spool could not store", "events", len(evs), "error", err)
	}
	c.stats.dropped.Add(uint64(len(evs)))
	c.droppedSince.Add(uint64(len(evs)) + dropped)
	c.armTimer()
}

// oversized says whether an encoded batch exceeds what the server
// decodes. gzip's trailer ends with the uncompressed length (mod 2^32,
// and batches are far smaller), so neither limit needs a second pass.
func oversized(gz []byte) bool {
	if len(gz) > sizeLimits.compressed {
		return true
	}
	return len(gz) >= 4 && int64(binary.LittleEndian.Uint32(gz[len(gz)-4:])) > int64(sizeLimits.json)
}

func newBatchID() string {
	var id [16]byte
	rand.Read(id[:]) // never fails (crypto/rand)
	return hex.EncodeToString(id[:])
}

// drain waits until the spool is empty, ctx ends or the server refuses
// the sensor.
func (c *Client) drain(ctx context.Context) error {
	for {
		if _, files := c.spool.usage(); files == 0 {
			return nil
		}
		if c.stats.unauthorized.Load() {
			return errors.New("the server refuses this sensor's credential")
		}
		select {
		case <-c.progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	bytes, files := c.spool.usage()
	s := Stats{
		SentEvents:   c.stats.sentEvents.Load(),
		SentBatches:  c.stats.sentBatches.Load(),
		Duplicates:   c.stats.duplicates.Load(),
		Dropped:      c.stats.dropped.Load(),
		Rejected:     c.stats.rejected.Load(),
		CorruptFiles: c.stats.corrupt.Load(),
		SendErrors:   c.stats.sendErrors.Load(),
		Enrolments:   c.stats.enrolments.Load(),
		SpoolBytes:   bytes,
		SpoolFiles:   files,
		Unauthorized: c.stats.unauthorized.Load(),
	}
	c.stats.mu.Lock()
	s.LastError, s.LastErrorAt = c.stats.lastError, c.stats.lastAt
	c.stats.mu.Unlock()
	return s
}

// Close cuts the pending events into a batch, then waits until the spool
// is empty or ctx ends, and stops. What is still spooled is sent by the
// next Client on the same state directory; the error says how much that
// is. Events sent after Close are dropped and counted.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() { c.closeErr = c.close(ctx) })
	return c.closeErr
}

func (c *Client) close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	var err error
	// A batch the server refuses while Close waits hands its Dropped count
	// back for another batch, hence the loop.
	for err == nil {
		done := make(chan struct{})
		c.flush <- done
		<-done
		if _, files := c.spool.usage(); files == 0 {
			break // nothing to deliver, or no room to write it
		}
		err = c.drain(ctx)
		if c.droppedSince.Load() == 0 {
			break
		}
	}
	close(c.stopBatcher)
	<-c.batcherDone
	c.cancelSend()
	<-c.senderDone
	c.http.CloseIdleConnections()
	c.unregisterMetrics()
	c.lock.Close()
	if bytes, files := c.spool.usage(); files > 0 {
		c.log.Warn("batches left in the spool for the next start", "batches", files, "bytes", bytes, "reason", err)
		return fmt.Errorf("%d batches (%d bytes) left in the spool: %w", files, bytes, err)
	}
	return nil
}
