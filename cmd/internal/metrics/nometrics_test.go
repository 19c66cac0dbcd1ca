//go:build nometrics

package metrics

import (
	"errors"
	"testing"
)

// TestNotBuilt checks that a build without metrics says so rather than
// serving nothing.
func TestNotBuilt(t *testing.T) {
	if _, err := Handler(nil); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Handler: %v, want ErrNotBuilt", err)
	}
}
