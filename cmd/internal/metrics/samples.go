//go:build !nometrics

package metrics

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// counterSample and gaugeSample are prometheus.Metrics whose Write
// allocates nothing: a scrape allocates a session's samples together
// (sessionSamples), and their labels are the cache's (labelCache), shared
// by every series of the session and by every scrape (a dto.Metric's
// labels are immutable by the client library's contract).
type counterSample struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	value  float64
	m      dto.Counter
}

func (s *counterSample) Desc() *prometheus.Desc { return s.desc }

func (s *counterSample) Write(out *dto.Metric) error {
	s.m.Value = &s.value
	out.Label, out.Counter = s.labels, &s.m
	return nil
}

type gaugeSample struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	value  float64
	m      dto.Gauge
}

func (s *gaugeSample) Desc() *prometheus.Desc { return s.desc }

func (s *gaugeSample) Write(out *dto.Metric) error {
	s.m.Value = &s.value
	out.Label, out.Gauge = s.labels, &s.m
	return nil
}

// sessionSamples are a session's series in one scrape: every counter and
// ul2tp_session_pump_restarts_total; ul2tp_session_reorder_queue_depth
// and ul2tp_session_up.
type sessionSamples struct {
	counters [len(counters) + 1]counterSample
	gauges   [2]gaugeSample
}

// tunnelSamples are a tunnel's counters in one scrape.
type tunnelSamples struct {
	counters [len(counters)]counterSample
}

// labelCache keeps each session's and tunnel's label pairs from one
// scrape to the next, so a scrape formats no ids and makes no labels for
// what it has seen before. What a scrape no longer finds is dropped: a
// deleted session's series are gone from the next scrape, and the cache
// holds only what the plane has.
type labelCache struct {
	mu       sync.Mutex
	gen      uint64
	sessions map[session]*cachedLabels
	tunnels  map[tunnel]*cachedLabels
}

type cachedLabels struct {
	name   string // the session's interface name, as when made
	labels []*dto.LabelPair
	gen    uint64 // the last scrape that found it
}

// sessionLabels returns s's labels, in the order the client library
// sorts them (name, session_id, tunnel_id). Called with mu held.
func (c *labelCache) sessionLabels(s session) []*dto.LabelPair {
	name := s.IfName()
	l := c.sessions[s]
	if l == nil || l.name != name {
		cfg := s.Config()
		l = &cachedLabels{name: name, labels: []*dto.LabelPair{
			labelPair("name", name),
			labelPair("session_id", strconv.FormatUint(uint64(cfg.ID), 10)),
			labelPair("tunnel_id", strconv.FormatUint(uint64(cfg.TunnelID), 10)),
		}}
		c.sessions[s] = l
	}
	l.gen = c.gen
	return l.labels
}

// tunnelLabels returns t's labels. Called with mu held.
func (c *labelCache) tunnelLabels(t tunnel) []*dto.LabelPair {
	l := c.tunnels[t]
	if l == nil {
		l = &cachedLabels{labels: []*dto.LabelPair{
			labelPair("tunnel_id", strconv.FormatUint(uint64(t.Config().ID), 10)),
		}}
		c.tunnels[t] = l
	}
	l.gen = c.gen
	return l.labels
}

// prune drops what the scrape of generation c.gen did not find, when
// the cache holds more than it found. Called with mu held.
func (c *labelCache) prune(tunnels, sessions int) {
	if len(c.tunnels) > tunnels {
		for t, l := range c.tunnels {
			if l.gen != c.gen {
				delete(c.tunnels, t)
			}
		}
	}
	if len(c.sessions) > sessions {
		for s, l := range c.sessions {
			if l.gen != c.gen {
				delete(c.sessions, s)
			}
		}
	}
}

func labelPair(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: &name, Value: &value}
}
