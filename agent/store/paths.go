package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/camgate/camgate/agent/conf"
)

// storedPath mirrors conf.PathConf with the source as a plain string:
// conf.SecretURL redacts itself in JSON, and the store must keep the real
// URL. A test fails when conf.PathConf gains a field this mirror lacks,
// except the runOn* keys (tagged origin:"file"): they come from the config
// file only and have no place here on purpose.
type storedPath struct {
	Source                     string         `json:"source"`
	SourceOnDemand             *bool          `json:"sourceOnDemand,omitempty"`
	SourceOnDemandStartTimeout *conf.Duration `json:"sourceOnDemandStartTimeout,omitempty"`
	SourceOnDemandCloseAfter   *conf.Duration `json:"sourceOnDemandCloseAfter,omitempty"`
	RTSPTransport              *string        `json:"rtspTransport,omitempty"`
	ReadTimeout                *conf.Duration `json:"readTimeout,omitempty"`
	MaxReaders                 *int           `json:"maxReaders,omitempty"`
	SourceRetryMax             *conf.Duration `json:"sourceRetryMax,omitempty"`
	SourceFingerprint          string         `json:"sourceFingerprint,omitempty"`

	Record                *bool          `json:"record,omitempty"`
	RecordPath            *string        `json:"recordPath,omitempty"`
	RecordSegmentDuration *conf.Duration `json:"recordSegmentDuration,omitempty"`
	RecordPartDuration    *conf.Duration `json:"recordPartDuration,omitempty"`
	RecordDeleteAfter     *conf.Duration `json:"recordDeleteAfter,omitempty"`
	RecordMaxBytes        *conf.ByteSize `json:"recordMaxBytes,omitempty"`
	RecordMinFreeBytes    *conf.ByteSize `json:"recordMinFreeBytes,omitempty"`
}

func toStored(p conf.PathConf) storedPath {
	return storedPath{
		Source:                     string(p.Source),
		SourceOnDemand:             p.SourceOnDemand,
		SourceOnDemandStartTimeout: p.SourceOnDemandStartTimeout,
		SourceOnDemandCloseAfter:   p.SourceOnDemandCloseAfter,
		RTSPTransport:              p.RTSPTransport,
		ReadTimeout:                p.ReadTimeout,
		MaxReaders:                 p.MaxReaders,
		SourceRetryMax:             p.SourceRetryMax,
		SourceFingerprint:          string(p.SourceFingerprint),
		Record:                     p.Record,
		RecordPath:                 p.RecordPath,
		RecordSegmentDuration:      p.RecordSegmentDuration,
		RecordPartDuration:         p.RecordPartDuration,
		RecordDeleteAfter:          p.RecordDeleteAfter,
		RecordMaxBytes:             p.RecordMaxBytes,
		RecordMinFreeBytes:         p.RecordMinFreeBytes,
	}
}

func (sp storedPath) conf() conf.PathConf {
	return conf.PathConf{
		Source:                     conf.SecretURL(sp.Source),
		SourceOnDemand:             sp.SourceOnDemand,
		SourceOnDemandStartTimeout: sp.SourceOnDemandStartTimeout,
		SourceOnDemandCloseAfter:   sp.SourceOnDemandCloseAfter,
		RTSPTransport:              sp.RTSPTransport,
		ReadTimeout:                sp.ReadTimeout,
		MaxReaders:                 sp.MaxReaders,
		SourceRetryMax:             sp.SourceRetryMax,
		SourceFingerprint:          conf.Fingerprint(sp.SourceFingerprint),
		Record:                     sp.Record,
		RecordPath:                 sp.RecordPath,
		RecordSegmentDuration:      sp.RecordSegmentDuration,
		RecordPartDuration:         sp.RecordPartDuration,
		RecordDeleteAfter:          sp.RecordDeleteAfter,
		RecordMaxBytes:             sp.RecordMaxBytes,
		RecordMinFreeBytes:         sp.RecordMinFreeBytes,
	}
}

// FleetPaths returns every fleet-managed path.
func (s *Store) FleetPaths() (map[string]conf.PathConf, error) {
	out := map[string]conf.PathConf{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPaths).ForEach(func(k, v []byte) error {
			var sp storedPath
			if err := json.Unmarshal(v, &sp); err != nil {
				return fmt.Errorf("path %q: %w", k, err)
			}
			out[string(k)] = sp.conf()
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read fleet paths: %w", err)
	}
	return out, nil
}

// FleetPath returns one fleet-managed path or ErrNotFound.
func (s *Store) FleetPath(name string) (conf.PathConf, error) {
	var sp storedPath
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPaths).Get([]byte(name))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &sp)
	})
	if err != nil {
		return conf.PathConf{}, fmt.Errorf("read fleet path %q: %w", name, err)
	}
	return sp.conf(), nil
}

// PutFleetPath adds or replaces one fleet-managed path.
func (s *Store) PutFleetPath(name string, p conf.PathConf) error {
	v, err := json.Marshal(toStored(p))
	if err != nil {
		return fmt.Errorf("save fleet path %q: %w", name, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketPaths).Put([]byte(name), v) })
	if err != nil {
		return fmt.Errorf("save fleet path %q: %w", name, err)
	}
	return nil
}

// DeleteFleetPath removes one fleet-managed path; ErrNotFound if absent.
func (s *Store) DeleteFleetPath(name string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPaths)
		if b.Get([]byte(name)) == nil {
			return ErrNotFound
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("delete fleet path %q: %w", name, err)
	}
	return nil
}

// SetFleetPaths replaces the whole fleet-managed set in one transaction.
func (s *Store) SetFleetPaths(paths map[string]conf.PathConf) error {
	enc := make(map[string][]byte, len(paths))
	for name, p := range paths {
		v, err := json.Marshal(toStored(p))
		if err != nil {
			return fmt.Errorf("set fleet paths: %q: %w", name, err)
		}
		enc[name] = v
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketPaths); err != nil {
			return err
		}
		b, err := tx.CreateBucket(bucketPaths)
		if err != nil {
			return err
		}
		for name, v := range enc {
			if err := b.Put([]byte(name), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set fleet paths: %w", err)
	}
	return nil
}
