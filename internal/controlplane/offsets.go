package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bulwarkhq/bulwark/internal/auditlog"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// StoreOffsets keeps audit log file offsets in the store's settings, so a
// server that restarts, or another replica, reads on where it stopped.
type StoreOffsets struct{ DB *store.DB }

var _ auditlog.OffsetStore = StoreOffsets{}

const offsetPrefix = "auditlog.offset."

// Load implements auditlog.OffsetStore.
func (s StoreOffsets) Load(ctx context.Context, key string) (auditlog.Offset, bool, error) {
	v, err := s.DB.Setting(ctx, offsetPrefix+key)
	if errors.Is(err, store.ErrNotFound) || (err == nil && v == "") {
		return auditlog.Offset{}, false, nil
	}
	if err != nil {
		return auditlog.Offset{}, false, fmt.Errorf("loading the offset of %s: %w", key, err)
	}
	var o auditlog.Offset
	if err := json.Unmarshal([]byte(v), &o); err != nil {
		return auditlog.Offset{}, false, fmt.Errorf("the stored offset of %s is corrupt: %w", key, err)
	}
	return o, true, nil
}

// Save implements auditlog.OffsetStore.
func (s StoreOffsets) Save(ctx context.Context, key string, o auditlog.Offset) error {
	data, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("encoding the offset of %s: %w", key, err)
	}
	if err := s.DB.SetSetting(ctx, offsetPrefix+key, string(data)); err != nil {
		return fmt.Errorf("saving the offset of %s: %w", key, err)
	}
	return nil
}
