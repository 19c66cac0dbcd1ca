//go:build nometrics

// Package metrics would export a datapath.Plane's counters to Prometheus:
// this build (tag nometrics, for routers short of flash) leaves the
// Prometheus client out, and Handler only says so.
package metrics

import (
	"errors"
	"net/http"

	"github.com/ul2tp/ul2tp/datapath"
)

// ErrNotBuilt is Handler's error in a build without metrics.
var ErrNotBuilt = errors.New("ul2tpd built without metrics (build tag nometrics); build without the tag to serve them")

// Handler fails: this build has no metrics.
func Handler(p *datapath.Plane, v2 ...L2TPv2) (http.Handler, error) {
	return nil, ErrNotBuilt
}
