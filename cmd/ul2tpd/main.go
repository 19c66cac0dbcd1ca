// Command ul2tpd is the ul2tp daemon: it holds L2TPv3 tunnels and sessions,
// their TAP devices and sockets, and answers ul2tp (or any client of the
// protocol in docs/api.md) on a Unix socket.
//
// It runs in the foreground and logs to standard error. SIGTERM or SIGINT
// removes every device it made and exits 0. SIGHUP rereads --config, as
// "ul2tp reload" does (docs/operations.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ul2tp/ul2tp/cmd/internal/api"
	"github.com/ul2tp/ul2tp/cmd/internal/apiserver"
	"github.com/ul2tp/ul2tp/cmd/internal/config"
	"github.com/ul2tp/ul2tp/cmd/internal/metrics"
	"github.com/ul2tp/ul2tp/cmd/internal/reload"
	"github.com/ul2tp/ul2tp/control/engine"
	"github.com/ul2tp/ul2tp/datapath"
	"github.com/ul2tp/ul2tp/datapath/event"
	"github.com/ul2tp/ul2tp/datapath/tap"
	"golang.org/x/sys/unix"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ul2tpd:", err)
		os.Exit(1)
	}
}

func run() error {
	socket := flag.String("socket", api.DefaultSocket, "path of the control socket (mode 0600)")
	cfgPath := flag.String("config", "", "TOML file of tunnels and sessions to create at start and on reload (go-l2tp's format)")
	level := flag.String("log-level", "info", "debug, info, warn or error")
	jsonLog := flag.Bool("log-json", false, "log as JSON lines")
	debugAddr := flag.String("debug-addr", "", "serve Go's pprof profiles on this address (e.g. 127.0.0.1:6060); off by default")
	queues := flag.Int("queues", 1, "queues per TAP device, each with its own transmit goroutine (IFF_MULTI_QUEUE)")
	noOffload := flag.Bool("no-offload", false, "turn off TAP and PPP TUN TSO/checksum offload and UDP GSO/GRO (the fallback path)")
	sockBuf := flag.Int("sockbuf", datapath.DefaultSocketBuffer, "SO_RCVBUF and SO_SNDBUF of each tunnel socket, bytes; 0 leaves the kernel's defaults")
	metricsAddr := flag.String("metrics-listen", "", "serve Prometheus metrics at /metrics on this address (e.g. 127.0.0.1:9701); off by default")
	maxConns := flag.Int("max-conns", apiserver.DefaultMaxConns, "control connections served at once; one more is answered \"too many connections\" and closed")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", flag.Arg(0))
	}
	if *queues < 1 || *queues > 16 {
		return fmt.Errorf("--queues %d: want 1..16", *queues)
	}
	if *maxConns < 1 || *maxConns > 1<<20 {
		return fmt.Errorf("--max-conns %d: want 1..1048576", *maxConns)
	}
	if *sockBuf < 0 || *sockBuf > 1<<30 {
		return fmt.Errorf("--sockbuf %d: want 0 (the kernel's defaults) to 1073741824 bytes", *sockBuf)
	}
	socketBuffer := *sockBuf
	if socketBuffer == 0 {
		socketBuffer = -1 // the kernel's defaults
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", *level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if *jsonLog {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	log := slog.New(h)

	// SIGHUP's default would end the daemon: take it before anything else.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var file *config.File
	if *cfgPath != "" {
		f, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		file = f
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	raiseFileLimit(log)
	plane := datapath.New(log, datapath.Options{NoOffload: *noOffload, Queues: *queues, SocketBuffer: socketBuffer,
		Events: event.NewHub(log)})
	defer plane.Close()
	handler := &apiserver.Handler{Plane: plane, Log: log, MaxConns: *maxConns}
	var v2 []metrics.L2TPv2 // the L2TPv2 engine's metrics, if it runs
	if file != nil {
		rl := &reload.Reloader{Path: *cfgPath, Plane: plane, Log: log}
		if _, err := rl.Apply(file); err != nil {
			return err
		}
		handler.Reload = rl.Reload
		eng, err := startL2TPv2(log, plane, file)
		if err != nil {
			return err
		}
		if eng != nil {
			handler.L2TPv2 = eng
			v2 = append(v2, eng)
			defer func() {
				sctx, cancel := context.WithTimeout(context.Background(), apiserver.StopWait)
				defer cancel()
				eng.Shutdown(sctx)
			}()
		}
	}
	go reloadOnHangup(ctx, log, hup, handler)
	if *debugAddr != "" {
		go func() {
			log.Info("pprof listening", "addr", *debugAddr)
			if err := http.ListenAndServe(*debugAddr, nil); err != nil {
				log.Error("pprof", "err", err)
			}
		}()
	}
	if *metricsAddr != "" {
		stopMetrics, err := serveMetrics(ctx, log, *metricsAddr, plane, v2...)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	l, err := apiserver.Listen(*socket)
	if err != nil {
		return err
	}
	defer os.Remove(*socket)
	log.Info("ul2tpd ready", "socket", *socket, "pid", os.Getpid())
	err = handler.Serve(ctx, l)
	log.Info("ul2tpd stopping")
	return err
}

// serveMetrics serves the plane's metrics at /metrics on addr until ctx
// ends or the returned stop is called. It fails at once if addr cannot be
// listened on.
func serveMetrics(ctx context.Context, log *slog.Logger, addr string, plane *datapath.Plane, v2 ...metrics.L2TPv2) (stop func(), err error) {
	h, err := metrics.Handler(plane, v2...)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		log.Info("metrics listening", "addr", ln.Addr().String())
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics", "err", err)
		}
	}()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	return func() { close(done) }, nil
}

// raiseFileLimit raises the soft limit on open descriptors to the hard
// one: every TAP queue and tunnel socket takes one, and a host with many
// sessions should not run out at the default soft limit of 1024.
func raiseFileLimit(log *slog.Logger) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("descriptor limit unknown", "err", err)
		return
	}
	if lim.Cur < lim.Max {
		old := lim.Cur
		lim.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			log.Warn("descriptor limit not raised", "soft", old, "hard", lim.Max, "err", err)
			return
		}
	}
	log.Info("descriptor limit", "soft", lim.Cur, "hard", lim.Max)
}

// reloadOnHangup reloads the configuration file on each SIGHUP until ctx
// ends. A storm of signals coalesces: hup holds one, so while a reload
// runs at most one more waits, and the rest are dropped.
func reloadOnHangup(ctx context.Context, log *slog.Logger, hup <-chan os.Signal, h *apiserver.Handler) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		if h.Reload == nil {
			log.Warn("SIGHUP ignored", "err", apiserver.ErrNoConfig)
			continue
		}
		log.Info("SIGHUP: reloading")
		h.Handle(api.Request{Op: api.OpReload}) // the reload logs what it did

	}
}

// startL2TPv2 starts the L2TPv2 control plane when the file has an [lns]
// table or l2tpv2 tunnels (nil otherwise).
func startL2TPv2(log *slog.Logger, plane *datapath.Plane, f *config.File) (*engine.Engine, error) {
	if f.LNS == nil && len(f.LACs) == 0 {
		return nil, nil
	}
	if err := canRunPPP(f); err != nil {
		return nil, err
	}
	eng := engine.New(engine.Options{Plane: plane, Log: log})
	if f.LNS != nil {
		if err := eng.StartLNS(f.LNS.Config); err != nil {
			eng.Close()
			return nil, fmt.Errorf("%s:%d: lns: %w", f.Path, f.LNS.Line, err)
		}
	}
	for _, l := range f.LACs {
		if err := eng.AddLAC(l.Config); err != nil {
			eng.Close()
			return nil, fmt.Errorf("%s:%d: tunnel %q: %w", f.Path, l.Line, l.Name, err)
		}
	}
	return eng, nil
}

// canRunPPP refuses to start a daemon whose file runs PPP on TUN devices
// (an [lns] with local_ip and pool, or a LAC call with a user) when it
// cannot create them: every call would fail. A container started without
// --device /dev/net/tun or --cap-add NET_ADMIN is told so at once.
func canRunPPP(f *config.File) error {
	where := ""
	if f.LNS != nil && f.LNS.Config.PPP != nil {
		where = fmt.Sprintf("%s:%d: lns", f.Path, f.LNS.Line)
	}
	for _, l := range f.LACs {
		if where == "" && len(l.Config.PPP) > 0 {
			where = fmt.Sprintf("%s:%d: tunnel %q", f.Path, l.Line, l.Name)
		}
	}
	if where == "" {
		return nil
	}
	if err := tap.CanCreate(); err != nil {
		return fmt.Errorf("%s runs PPP on TUN devices, which this daemon cannot create: %w", where, err)
	}
	return nil
}
