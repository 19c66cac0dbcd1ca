package metrics

import "github.com/ul2tp/ul2tp/control/engine"

// L2TPv2 is what the metrics read of the L2TPv2 control plane: an
// *engine.Engine.
type L2TPv2 interface {
	Stats() engine.Stats
	PPPStats() engine.PPPStats
}
