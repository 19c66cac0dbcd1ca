package reload

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ul2tp/ul2tp/datapath"
)

// TestReloadFailureIsReportedAndRetried applies a file of two tunnels, the
// second on a port in use: the first is added, the failure names the
// second (and its session, not tried), and the next reload, with the port
// free, adds it and leaves the first alone. (No session is made: it needs
// a TAP; the netns test in cmd/ul2tpd covers them.)
func TestReloadFailureIsReportedAndRetried(t *testing.T) {
	busy, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.LocalAddr().(*net.UDPAddr).Port
	path := filepath.Join(t.TempDir(), "ul2tp.toml")
	text := "[tunnel.t1]\nlocal = \"127.0.0.1:0\"\npeer = \"127.0.0.2:1701\"\ntid = 1\nptid = 1\n\n" +
		"[tunnel.t2]\nlocal = \"127.0.0.1:" + strconv.Itoa(port) + "\"\npeer = \"127.0.0.3:1701\"\ntid = 2\nptid = 2\n\n" +
		"[tunnel.t2.session.s]\nsid = 1\npsid = 1\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := datapath.New(log, datapath.Options{})
	defer p.Close()
	r := &Reloader{Path: path, Plane: p, Log: log}

	res, err := r.Reload()
	if err == nil || !strings.Contains(err.Error(), "add tunnel t2 (2): ") ||
		!strings.Contains(err.Error(), "session t2/s (2/1): not added: tunnel t2 was not added") {
		t.Fatalf("reload with a port in use: %v", err)
	}
	if res == nil || len(res.Added) != 1 || res.Added[0].Tunnel != "t1" || len(res.Failed) != 2 {
		t.Fatalf("reload with a port in use: %+v", res)
	}
	t1 := p.Tunnel(1)

	// The port is free again. (The session goes: as root it would make
	// a TAP outside any test namespace.)
	busy.Close()
	if err := os.WriteFile(path, []byte(text[:strings.Index(text, "[tunnel.t2.session.s]")]), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err = r.Reload()
	if err != nil || p.Tunnel(2) == nil || len(res.Added) != 1 || res.Added[0].Tunnel != "t2" || res.Unchanged != 1 {
		t.Fatalf("second reload did not add t2 alone: %+v, %v", res, err)
	}
	if p.Tunnel(1) != t1 {
		t.Error("second reload replaced t1")
	}
}
