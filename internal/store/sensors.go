package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// RoleEnroll is the role of a token that may only enrol node sensors: it
// lives in the sensor DaemonSet's secret, so it reads nothing.
const RoleEnroll = "enroll"

// Alert sources: what a detection judged.
const (
	SourceAudit  = "audit"
	SourceSensor = "sensor"
)

// Sensor is a node sensor's identity: the node and cluster it enrolled
// for, the hash of the credential it was given, and what it has sent.
type Sensor struct {
	ID      int64
	Cluster string
	Node    string
	// Version is the sensor's version from its latest batch.
	Version string
	// Hash is the credential's stored form; Prefix its first characters,
	// to tell credentials apart.
	Hash       string
	Prefix     string
	EnrolledAt time.Time
	// EnrolledBy names the enrolment token used.
	EnrolledBy string
	LastSeenAt time.Time
	// Events counts the events stored; Dropped those the sensor reported
	// it lost; Rejected the batches the server refused.
	Events    int64
	Dropped   int64
	Rejected  int64
	RevokedAt time.Time
}

const sensorColumns = `id, cluster, node, version, hash, prefix, enrolled_at, enrolled_by, last_seen_at, events, dropped, rejected, revoked_at`

func scanSensor(row interface{ Scan(...any) error }) (*Sensor, error) {
	var (
		s             Sensor
		enrolled      int64
		seen, revoked sql.NullInt64
	)
	if err := row.Scan(&s.ID, &s.Cluster, &s.Node, &s.Version, &s.Hash, &s.Prefix, &enrolled, &s.EnrolledBy, &seen, &s.Events, &s.Dropped,
		&s.Rejected, &revoked); err != nil {
		return nil, err
	}
	s.EnrolledAt, s.LastSeenAt, s.RevokedAt = fromMS(enrolled), fromNullMS(seen), fromNullMS(revoked)
	return &s, nil
}

// EnrollSensor stores a sensor's credential hash for its cluster and
// node and sets sn.ID and sn.EnrolledAt. A sensor already enrolled there
// (revoked or not) keeps its id, counters and batch history but takes
// the new credential, so the old one stops working.
func (s *DB) EnrollSensor(ctx context.Context, sn *Sensor) error {
	if sn.Cluster == "" || sn.Node == "" || sn.Hash == "" {
		return fmt.Errorf("enrolling a sensor: cluster, node and credential are required")
	}
	sn.EnrolledAt = s.now()
	stored, err := scanSensor(s.queryRow(ctx, `INSERT INTO sensors (cluster, node, hash, prefix, enrolled_at, enrolled_by) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (cluster, node) DO UPDATE SET hash = excluded.hash, prefix = excluded.prefix, enrolled_at = excluded.enrolled_at,
		enrolled_by = excluded.enrolled_by, revoked_at = NULL RETURNING `+sensorColumns,
		clean(sn.Cluster, 253), clean(sn.Node, 253), sn.Hash, clean(sn.Prefix, 20), ms(sn.EnrolledAt), clean(sn.EnrolledBy, 200)))
	if err != nil {
		return fmt.Errorf("enrolling sensor %s/%s: %w", sn.Cluster, sn.Node, err)
	}
	*sn = *stored
	return nil
}

// SensorByHash finds the sensor whose credential has this hash, revoked
// or not; the caller refuses a revoked one.
func (s *DB) SensorByHash(ctx context.Context, hash string) (*Sensor, error) {
	sn, err := scanSensor(s.queryRow(ctx, `SELECT `+sensorColumns+` FROM sensors WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sensor credential: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading sensor: %w", err)
	}
	return sn, nil
}

// Sensor returns one sensor by id.
func (s *DB) Sensor(ctx context.Context, id int64) (*Sensor, error) {
	sn, err := scanSensor(s.queryRow(ctx, `SELECT `+sensorColumns+` FROM sensors WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sensor %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading sensor %d: %w", id, err)
	}
	return sn, nil
}

// SensorFilter selects sensors; zero fields select everything.
type SensorFilter struct {
	Cluster string
	Node    string
}

// Sensors lists sensors by id, one page at a time.
func (s *DB) Sensors(ctx context.Context, f SensorFilter, p Page) ([]Sensor, string, error) {
	c, err := decodeCursor(p.Cursor, "id")
	if err != nil {
		return nil, "", err
	}
	var w conditions
	w.addIf(f.Cluster != "", `cluster = ?`, f.Cluster)
	w.addIf(f.Node != "", `node = ?`, f.Node)
	if c != nil {
		w.add(`id < ?`, c.ID)
	}
	limit := p.limit()
	rows, err := s.query(ctx, `SELECT `+sensorColumns+` FROM sensors`+w.sql()+` ORDER BY id DESC LIMIT ?`, append(w.args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("listing sensors: %w", err)
	}
	defer rows.Close()
	var out []Sensor
	for rows.Next() {
		sn, err := scanSensor(rows)
		if err != nil {
			return nil, "", fmt.Errorf("listing sensors: %w", err)
		}
		out = append(out, *sn)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing sensors: %w", err)
	}
	out, next := pageByID(out, limit, func(sn Sensor) int64 { return sn.ID })
	return out, next, nil
}

// RevokeSensor revokes a sensor's credential; it may enrol again with an
// enrolment token.
func (s *DB) RevokeSensor(ctx context.Context, id int64) error {
	res, err := s.exec(ctx, `UPDATE sensors SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, ms(s.now()), id)
	if err != nil {
		return fmt.Errorf("revoking sensor %d: %w", id, err)
	}
	return affectedOne(res, "active sensor", id)
}

// RejectSensorBatch counts a batch the server refused.
func (s *DB) RejectSensorBatch(ctx context.Context, id int64) error {
	if _, err := s.exec(ctx, `UPDATE sensors SET rejected = rejected + 1, last_seen_at = ? WHERE id = ?`, ms(s.now()), id); err != nil {
		return fmt.Errorf("counting a rejected batch of sensor %d: %w", id, err)
	}
	return nil
}

// SensorEvent is one event a sensor reported: the fields hunting filters
// on, and the whole event as the sensor sent it.
type SensorEvent struct {
	ID      int64
	Cluster string
	Node    string
	// BatchID and Index place the event in the batch it came in; together
	// they are its evidence id (EvidenceID).
	BatchID string
	Index   int
	At      time.Time
	Kind    string
	PID     uint32
	UID     uint32
	Exe     string
	Args    []string
	// Container fields are empty for a process of the host.
	ContainerID   string
	ContainerName string
	Pod           string
	Namespace     string
	Image         string
	Digest        string
	// DNSName is the queried name of a dns event; Remote the destination
	// of a connect event or the peer of an exec'd process's socket.
	DNSName string
	Remote  string
	// Drift says the executable was not in the container's image.
	Drift bool
	Event json.RawMessage
}

// EvidenceID names an event in alerts: "<batch id>/<index>".
func EvidenceID(batchID string, index int) string { return batchID + "/" + strconv.Itoa(index) }

// EvidenceID is the event's name in alerts.
func (e *SensorEvent) EvidenceID() string { return EvidenceID(e.BatchID, e.Index) }

// SensorBatch is what a sensor sent in one request, as it is stored.
type SensorBatch struct {
	SensorID int64
	// ID is the sensor's id of the batch; a batch id already stored for
	// the sensor is a batch sent again.
	ID      string
	Version string
	// Dropped counts the events the sensor lost since its last batch.
	Dropped uint64
	Events  []SensorEvent
}

// sensorEventWidth is the number of columns RecordSensorBatch writes per
// event.
const sensorEventWidth = 20

// maxSensorCounter bounds the counters a sensor reports into, so that a
// hostile sensor's huge numbers saturate rather than overflow BIGINT.
const maxSensorCounter = 1 << 62

// RecordSensorBatch stores a batch of a sensor in one transaction: its
// id, its events, and the sensor's counters (events, dropped, last seen,
// version). It reports false, storing nothing but the time the sensor
// was seen, when the sensor's batch of this id is already stored.
func (s *DB) RecordSensorBatch(ctx context.Context, b SensorBatch) (bool, error) {
	now := s.now()
	dropped := int64(min(b.Dropped, maxSensorCounter))
	stored := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO sensor_batches (sensor_id, batch_id, events, received_at) VALUES (?, ?, ?, ?)
			ON CONFLICT DO NOTHING`), b.SensorID, clean(b.ID, 100), len(b.Events), ms(now))
		if err != nil {
			return fmt.Errorf("recording batch %s of sensor %d: %w", b.ID, b.SensorID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("recording batch %s of sensor %d: %w", b.ID, b.SensorID, err)
		}
		if n == 0 {
			_, err := tx.ExecContext(ctx, s.q(`UPDATE sensors SET last_seen_at = ? WHERE id = ?`), ms(now), b.SensorID)
			if err != nil {
				return fmt.Errorf("recording sensor %d as seen: %w", b.SensorID, err)
			}
			return nil
		}
		stored = true
		err = inBatches(b.Events, sensorEventWidth, func(batch []SensorEvent) error {
			args := make([]any, 0, sensorEventWidth*len(batch))
			for _, e := range batch {
				a, err := json.Marshal(cleanList(e.Args, 1000, 4096))
				if err != nil {
					return fmt.Errorf("encoding arguments of sensor event %s: %w", e.EvidenceID(), err)
				}
				at := e.At
				// A sensor's clock may be wrong; an event is not from the
				// future, which would also keep it past its retention.
				if at.IsZero() || at.After(now) {
					at = now
				}
				drift := 0
				if e.Drift {
					drift = 1
				}
				event := string(e.Event)
				if len(e.Event) == 0 {
					event = `{}`
				}
				args = append(args, clean(e.Cluster, 253), clean(e.Node, 253), clean(e.BatchID, 100), e.Index, ms(at), clean(e.Kind, 20),
					int64(e.PID), int64(e.UID), clean(e.Exe, 4096), string(a), clean(e.ContainerID, 253), clean(e.ContainerName, 253),
					clean(e.Pod, 253), clean(e.Namespace, 253), clean(e.Image, 4096), clean(e.Digest, 100), clean(e.DNSName, 255),
					clean(e.Remote, 100), drift, clean(event, len(event)))
			}
			_, err := tx.ExecContext(ctx, s.q(`INSERT INTO sensor_events (cluster, node, batch_id, event_index, at, kind, pid, uid, exe, args,
				container_id, container_name, pod, namespace, image, digest, dns_name, remote, drift, event) VALUES `+
				valueRows(len(batch), sensorEventWidth)), args...)
			if err != nil {
				return fmt.Errorf("recording %d events of sensor %d: %w", len(batch), b.SensorID, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE sensors SET events = CASE WHEN events > ? THEN ? ELSE events + ? END,
			dropped = CASE WHEN dropped > ? THEN ? ELSE dropped + ? END, last_seen_at = ?, version = ? WHERE id = ?`),
			maxSensorCounter-int64(len(b.Events)), int64(maxSensorCounter), len(b.Events),
			maxSensorCounter-dropped, int64(maxSensorCounter), dropped, ms(now), clean(b.Version, 253), b.SensorID)
		if err != nil {
			return fmt.Errorf("counting batch %s of sensor %d: %w", b.ID, b.SensorID, err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return stored, nil
}

// SensorEventFilter selects sensor events; zero fields select
// everything. Since is inclusive, Until exclusive.
type SensorEventFilter struct {
	Cluster string
	Node    string
	Kind    string
	// Container matches a container's id or its name.
	Container string
	Namespace string
	Pod       string
	Exe       string
	DNSName   string
	// Evidence is an evidence id, "<batch id>/<index>", as alerts list
	// them.
	Evidence string
	Since    time.Time
	Until    time.Time
}

// ErrBadEvidence is returned for an evidence id that is not
// "<batch id>/<index>".
var ErrBadEvidence = errors.New(`invalid evidence id (want "<batch id>/<index>")`)

// SensorEvents lists sensor events, newest stored first, one page at a
// time.
func (s *DB) SensorEvents(ctx context.Context, f SensorEventFilter, p Page) ([]SensorEvent, string, error) {
	c, err := decodeCursor(p.Cursor, "id")
	if err != nil {
		return nil, "", err
	}
	var w conditions
	w.addIf(f.Cluster != "", `cluster = ?`, f.Cluster)
	w.addIf(f.Node != "", `node = ?`, f.Node)
	w.addIf(f.Kind != "", `kind = ?`, f.Kind)
	w.addIf(f.Container != "", `(container_id = ? OR container_name = ?)`, f.Container, f.Container)
	w.addIf(f.Namespace != "", `namespace = ?`, f.Namespace)
	w.addIf(f.Pod != "", `pod = ?`, f.Pod)
	w.addIf(f.Exe != "", `exe = ?`, f.Exe)
	w.addIf(f.DNSName != "", `dns_name = ?`, f.DNSName)
	if f.Evidence != "" {
		batch, index, ok := strings.Cut(f.Evidence, "/")
		n, err := strconv.Atoi(index)
		if !ok || batch == "" || err != nil || n < 0 {
			return nil, "", fmt.Errorf("%w: %q", ErrBadEvidence, clean(f.Evidence, 100))
		}
		w.add(`batch_id = ? AND event_index = ?`, batch, n)
	}
	w.addIf(!f.Since.IsZero(), `at >= ?`, ms(f.Since))
	w.addIf(!f.Until.IsZero(), `at < ?`, ms(f.Until))
	if c != nil {
		w.add(`id < ?`, c.ID)
	}
	limit := p.limit()
	rows, err := s.query(ctx, `SELECT id, cluster, node, batch_id, event_index, at, kind, pid, uid, exe, args, container_id, container_name,
		pod, namespace, image, digest, dns_name, remote, drift, event FROM sensor_events`+w.sql()+` ORDER BY id DESC LIMIT ?`,
		append(w.args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("listing sensor events: %w", err)
	}
	defer rows.Close()
	var out []SensorEvent
	for rows.Next() {
		var (
			e            SensorEvent
			at, pid, uid int64
			drift        int
			args, event  string
		)
		if err := rows.Scan(&e.ID, &e.Cluster, &e.Node, &e.BatchID, &e.Index, &at, &e.Kind, &pid, &uid, &e.Exe, &args, &e.ContainerID,
			&e.ContainerName, &e.Pod, &e.Namespace, &e.Image, &e.Digest, &e.DNSName, &e.Remote, &drift, &event); err != nil {
			return nil, "", fmt.Errorf("listing sensor events: %w", err)
		}
		if err := json.Unmarshal([]byte(args), &e.Args); err != nil {
			return nil, "", fmt.Errorf("reading sensor event %d: %w", e.ID, err)
		}
		e.At, e.PID, e.UID, e.Drift, e.Event = fromMS(at), uint32(pid), uint32(uid), drift != 0, json.RawMessage(event)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("listing sensor events: %w", err)
	}
	out, next := pageByID(out, limit, func(e SensorEvent) int64 { return e.ID })
	return out, next, nil
}
