// Package captest runs test code without some capabilities, as an
// unprivileged daemon holding only CAP_NET_ADMIN would run it.
//
// Linux keeps capabilities per thread: Without drops them from the
// effective set of one locked OS thread only, and raises them again
// afterwards, so the rest of the test process keeps them.
package captest

import (
	"fmt"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// Without runs fn on an OS thread whose effective capability set lacks
// caps (unix.CAP_NET_ADMIN and the like). It skips t unless the thread
// holds every cap to begin with (fails it with CI set in the environment,
// as the datapath's other privileged tests do). fn runs on another
// goroutine: it may call t.Error, not t.Fatal.
func Without(t *testing.T, fn func(), caps ...int) {
	t.Helper()
	errc := make(chan error, 1)
	var skip string
	go func() {
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		orig := data
		for _, c := range caps {
			if data[c/32].Effective&(1<<(c%32)) == 0 {
				runtime.UnlockOSThread()
				skip = "needs capability " + capName(c)
				errc <- nil
				return
			}
			data[c/32].Effective &^= 1 << (c % 32)
		}
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		fn()
		if err := unix.Capset(&hdr, &orig[0]); err != nil {
			// Leave the thread locked: it exits with this goroutine
			// rather than serve others without the capabilities.
			errc <- err
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("capabilities: %v", err)
	}
	if skip != "" && os.Getenv("CI") != "" {
		t.Fatal(skip)
	}
	if skip != "" {
		t.Skip(skip)
	}
}

func capName(c int) string {
	switch c {
	case unix.CAP_NET_ADMIN:
		return "CAP_NET_ADMIN"
	case unix.CAP_NET_RAW:
		return "CAP_NET_RAW"
	case unix.CAP_NET_BIND_SERVICE:
		return "CAP_NET_BIND_SERVICE"
	}
	return fmt.Sprintf("number %d", c)
}
