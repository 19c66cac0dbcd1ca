// Command benchreport turns the raw files bench/bench.sh collects (iperf3
// JSON, /proc/stat and /proc/PID/stat snapshots, go test -bench output) into
// results.json, prints the results table, and draws chart.png.
//
//	benchreport -raw DIR -json results.json -png chart.png   (what bench.sh runs)
//	benchreport -from results.json [-png chart.png]           (reprint, redraw)
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Results is results.json.
type Results struct {
	Date            string            `json:"date"`
	Command         string            `json:"command"`
	RuntimeSeconds  int               `json:"runtime_seconds"`
	DurationSeconds int               `json:"duration_seconds"`
	Repeat          int               `json:"repeat"`
	Host            map[string]string `json:"host"`
	// BackgroundBusyCores is the machine's non-idle CPU (in cores) over 2 s
	// with nothing of the benchmark running, at the start and at the end.
	BackgroundBusyCores map[string]float64 `json:"background_busy_cores"`
	Rows                []Row              `json:"rows"`
	GoBench             *GoBench           `json:"go_bench,omitempty"`
	Notes               []string           `json:"notes,omitempty"`
}

// Row is one setup.
type Row struct {
	ID       string `json:"id"`
	Label    string `json:"label"`
	InnerMTU int    `json:"inner_mtu"`
	Note     string `json:"note,omitempty"`
	TCP1     *Test  `json:"tcp_1_stream"`
	TCP4     *Test  `json:"tcp_4_streams"`
	UDP64    *Test  `json:"udp_64b"`
	// Ratios of this row's medians to the veth-direct and VXLAN rows'.
	VsVeth  Ratios `json:"vs_veth"`
	VsVXLAN Ratios `json:"vs_vxlan"`
	// Counters: for ul2tp rows, each end's session counters at the end of
	// the row (ul2tp -s -j show session), keyed by namespace end "a"/"b".
	Counters map[string]map[string]uint64 `json:"ul2tp_counters,omitempty"`
	// RSS: for ul2tp rows, each end's ul2tpd resident set in KiB, after
	// setup and after every measurement, in order, keyed by end "a"/"b".
	RSS map[string][]RSSSample `json:"ul2tpd_rss_kib,omitempty"`
}

// RSSSample is one VmRSS reading of a ul2tpd.
type RSSSample struct {
	After string `json:"after"` // "setup" or the test and repetition, "tcp1.2"
	KiB   int    `json:"kib"`
}

// Ratios compares the medians of two rows.
type Ratios struct {
	TCP1  *float64 `json:"tcp_1_stream"`
	TCP4  *float64 `json:"tcp_4_streams"`
	UDP64 *float64 `json:"udp_64b_pps"`
}

// Test is one kind of measurement on one row, repeated.
type Test struct {
	// Unit of Median and Samples: "Gbit/s" (TCP, received) or
	// "kpps" (UDP 64-byte datagrams received per second).
	Unit     string    `json:"unit"`
	Median   *float64  `json:"median"`
	Samples  []float64 `json:"samples"`
	Failures int       `json:"failures"`
	// CPU seconds per GB of iperf3 payload received: all non-idle CPU of
	// the machine (/proc/stat, every core, softirq included), and the
	// utime+stime of the tunnel's own processes (userspace tunnels only).
	CPUSystemSPerGB  *float64  `json:"cpu_system_s_per_gb"`
	CPUSystemSamples []float64 `json:"cpu_system_s_per_gb_samples"`
	CPUTunnelSPerGB  *float64  `json:"cpu_tunnel_s_per_gb,omitempty"`
	CPUTunnelSamples []float64 `json:"cpu_tunnel_s_per_gb_samples,omitempty"`
	// Attributed: utime+stime of the tunnel processes, both iperf3 ends
	// and the ksoftirqd threads; unlike the system figure it leaves out
	// other processes on the machine (a lower bound: softirq work done
	// while an unrelated task was current is not counted).
	CPUAttributedSPerGB  *float64  `json:"cpu_attributed_s_per_gb"`
	CPUAttributedSamples []float64 `json:"cpu_attributed_s_per_gb_samples"`
	// BusyCores: median non-idle CPU, in cores, during the measurement.
	BusyCores *float64 `json:"busy_cores"`
	// UDP only: datagrams sent per second (kpps) and loss, medians.
	SentKpps    *float64 `json:"sent_kpps,omitempty"`
	LossPercent *float64 `json:"loss_percent,omitempty"`
	// UDP only, userspace tunnels: datagrams received per second for each
	// core the tunnel processes kept busy (their utime+stime), in kpps.
	KppsPerTunnelCore *float64 `json:"kpps_per_tunnel_core,omitempty"`
}

// udpPayload is the UDP test's datagram payload, bytes.
const udpPayload = 64

// perTunnelCore derives the UDP test's packet rate per tunnel core from
// its tunnel CPU seconds per GB of 64-byte payloads.
func perTunnelCore(t *Test) *float64 {
	if t == nil || t.CPUTunnelSPerGB == nil || *t.CPUTunnelSPerGB <= 0 {
		return nil
	}
	v := round(1e9/udpPayload / *t.CPUTunnelSPerGB / 1e3, 0)
	return &v
}

// GoBench holds the micro-benchmarks.
type GoBench struct {
	Command    string  `json:"command"`
	Benchmarks []Bench `json:"benchmarks"`
	// ZeroAllocs: every benchmark reported 0 allocs/op.
	ZeroAllocs bool   `json:"zero_allocs"`
	Failed     bool   `json:"failed"`
	Output     string `json:"output,omitempty"` // only when Failed
}

// Bench is one go test -bench line.
type Bench struct {
	Package     string   `json:"package"`
	Name        string   `json:"name"`
	N           int64    `json:"n"`
	NsPerOp     float64  `json:"ns_per_op"`
	MBPerS      *float64 `json:"mb_per_s,omitempty"`
	BytesPerOp  float64  `json:"bytes_per_op"`
	AllocsPerOp float64  `json:"allocs_per_op"`
}

var tests = []string{"tcp1", "tcp4", "udp64"}

func main() {
	raw := flag.String("raw", "", "directory of raw files written by bench.sh")
	from := flag.String("from", "", "read an existing results.json instead of -raw")
	jsonOut := flag.String("json", "", "write results.json here")
	pngOut := flag.String("png", "", "draw the chart here")
	flag.Parse()
	var res *Results
	var err error
	switch {
	case *raw != "":
		res, err = collect(*raw)
	case *from != "":
		res, err = load(*from)
	default:
		err = errors.New("need -raw DIR or -from results.json")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
	}
	printReport(os.Stdout, res)
	if *pngOut != "" {
		if err := chart(res, *pngOut); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport: chart:", err)
			os.Exit(1)
		}
	}
	if res.GoBench != nil && (res.GoBench.Failed || !res.GoBench.ZeroAllocs) {
		os.Exit(2)
	}
}

func load(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	return &r, json.Unmarshal(b, &r)
}

// ---- collecting -----------------------------------------------------------

func collect(dir string) (*Results, error) {
	meta, err := readEnv(filepath.Join(dir, "meta.env"))
	if err != nil {
		return nil, err
	}
	res := &Results{
		Date:                meta["date"],
		Command:             meta["command"],
		Host:                map[string]string{},
		BackgroundBusyCores: map[string]float64{},
	}
	res.RuntimeSeconds, _ = strconv.Atoi(meta["runtime"])
	res.DurationSeconds, _ = strconv.Atoi(meta["duration"])
	res.Repeat, _ = strconv.Atoi(meta["repeat"])
	for _, k := range []string{"kernel", "cpu", "ncpu", "iperf3", "openvpn", "fastd", "go", "ul2tp"} {
		res.Host[k] = meta[k]
	}
	for _, when := range []string{"start", "end"} {
		if c, err := readCPU(filepath.Join(dir, "baseline-"+when+".cpu")); err == nil && c.wall > 0 {
			res.BackgroundBusyCores[when] = round(c.sys/c.wall, 2)
		}
	}
	ncpu, _ := strconv.Atoi(meta["ncpu"])
	if c := math.Max(res.BackgroundBusyCores["start"], res.BackgroundBusyCores["end"]); ncpu > 0 && c > 0.1*float64(ncpu) {
		res.Notes = append(res.Notes, fmt.Sprintf(
			"other processes kept up to %.2f of %d cores busy before/after the run: the system CPU s/GB figures include their share (see the attributed column), and throughput is lower than on a quiet machine", c, ncpu))
	}

	rows, err := readRows(filepath.Join(dir, "rows.tsv"))
	if err != nil {
		return nil, err
	}
	for i := range rows {
		r := &rows[i]
		for _, t := range tests {
			tt := collectTest(filepath.Join(dir, r.ID), t, res.Repeat)
			switch t {
			case "tcp1":
				r.TCP1 = tt
			case "tcp4":
				r.TCP4 = tt
			case "udp64":
				r.UDP64 = tt
			}
			if tt.Failures > 0 {
				res.Notes = append(res.Notes, fmt.Sprintf("%s %s: %d of %d measurements failed", r.ID, t, tt.Failures, res.Repeat))
			}
		}
		r.Counters = readCounters(filepath.Join(dir, r.ID))
		r.RSS = readRSS(filepath.Join(dir, r.ID, "rss.txt"))
		for _, end := range []string{"a", "b"} {
			var bad []string
			for _, k := range []string{"tx_errors", "rx_errors", "rx_invalid", "rx_cookie_discards", "rx_seq_discards", "rx_oos_packets"} {
				if v := r.Counters[end][k]; v > 0 {
					bad = append(bad, fmt.Sprintf("%s %d", k, v))
				}
			}
			if len(bad) > 0 {
				res.Notes = append(res.Notes, fmt.Sprintf("%s, end %s: %s", r.ID, end, strings.Join(bad, ", ")))
			}
		}
	}
	ratios(rows)
	res.Rows = rows

	if out, err := os.ReadFile(filepath.Join(dir, "gobench.txt")); err == nil {
		res.GoBench = parseGoBench(string(out))
		if !res.GoBench.ZeroAllocs {
			res.Notes = append(res.Notes, "a Go micro-benchmark allocates (allocs/op > 0)")
		}
		if res.GoBench.Failed {
			res.Notes = append(res.Notes, "go test -bench failed")
		}
		for _, b := range res.GoBench.Benchmarks {
			if b.AllocsPerOp == 0 && b.BytesPerOp > 0 {
				res.Notes = append(res.Notes, fmt.Sprintf(
					"%s.%s: 0 allocs/op but %.0f B/op, so it allocates now and then (less than once per op)",
					filepath.Base(b.Package), strings.TrimPrefix(b.Name, "Benchmark"), b.BytesPerOp))
			}
		}
	}
	return res, nil
}

// readCounters reads counters-a.json and counters-b.json, ul2tp -s -j show
// session output; it sums the sessions' stats (there is one).
func readCounters(dir string) map[string]map[string]uint64 {
	var out map[string]map[string]uint64
	for _, end := range []string{"a", "b"} {
		b, err := os.ReadFile(filepath.Join(dir, "counters-"+end+".json"))
		if err != nil {
			continue
		}
		var sessions []struct {
			Stats map[string]uint64 `json:"stats"`
		}
		if json.Unmarshal(b, &sessions) != nil {
			continue
		}
		m := map[string]uint64{}
		for _, s := range sessions {
			for k, v := range s.Stats {
				m[k] += v
			}
		}
		if out == nil {
			out = map[string]map[string]uint64{}
		}
		out[end] = m
	}
	return out
}

// readRSS reads rss.txt: lines "END AFTER KIB".
func readRSS(path string) map[string][]RSSSample {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	out := map[string][]RSSSample{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		kib, err := strconv.Atoi(f[2])
		if err != nil || kib <= 0 {
			continue
		}
		out[f[0]] = append(out[f[0]], RSSSample{After: f[1], KiB: kib})
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// rssLine summarizes a row's RSS samples: per end, after setup, the
// largest, and at the end, in MiB.
func rssLine(r Row) string {
	var parts []string
	for _, end := range []string{"a", "b"} {
		v := r.RSS[end]
		if len(v) == 0 {
			continue
		}
		hi := 0
		for _, x := range v {
			hi = max(hi, x.KiB)
		}
		parts = append(parts, fmt.Sprintf("%s %.1f → max %.1f → end %.1f MiB",
			end, float64(v[0].KiB)/1024, float64(hi)/1024, float64(v[len(v)-1].KiB)/1024))
	}
	return strings.Join(parts, "; ")
}

// steps lists, in order, the rows that show ul2tp's datapath one step at a
// time, with what each adds.
var steps = []struct{ id, what string }{
	{"ul2tp-step0", "0: batched sockets only (--no-offload, udp_csum off)"},
	{"ul2tp-step1", "1: + TAP offloads: TSO super-frames segmented in Go, TCP coalescing into the TAP (udp_csum off: no UDP GSO)"},
	{"ul2tp-udp", "2: + UDP GSO and GRO (udp_csum on, the default)"},
	{"ul2tp-q2", "3: + 2 TAP queues (--queues 2)"},
	{"ul2tp-gmp1", "4: default, GOMAXPROCS=1"},
	{"ul2tp-pin", "5: default, each ul2tpd pinned to a CPU"},
	{"ul2tp-sockbuf", "6: default, --sockbuf 0 (the kernel's default socket buffers)"},
}

// ScrapeLine compares the UDP row scraped once a second with the plain
// UDP row, or returns "" when the run lacks either.
func ScrapeLine(res *Results) string {
	var plain, scraped *Row
	for i := range res.Rows {
		switch r := &res.Rows[i]; r.ID {
		case "ul2tp-udp":
			plain = r
		case "ul2tp-udp-scrape":
			scraped = r
		}
	}
	if plain == nil || scraped == nil || plain.TCP1 == nil || scraped.TCP1 == nil {
		return ""
	}
	return fmt.Sprintf("ul2tp udp + scraper 1/s against ul2tp udp (TCP1 / TCP4 / pps): %s",
		trio(Ratios{ratio(scraped.TCP1, plain.TCP1), ratio(scraped.TCP4, plain.TCP4), ratio(scraped.UDP64, plain.UDP64)}))
}

// StepTable returns the step rows with each one's TCP figures against
// step 0 and the previous step, or "" when the run has no step rows.
func StepTable(res *Results) string {
	byID := map[string]Row{}
	for _, r := range res.Rows {
		byID[r.ID] = r
	}
	var b strings.Builder
	var first, prev *float64
	for _, st := range steps {
		r, ok := byID[st.id]
		if !ok || r.TCP1 == nil {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("| step | TCP 1 stream Gbit/s | × step 0 | × previous | TCP 4 streams Gbit/s | UDP 64 B kpps | vs VXLAN (TCP1) | CPU s/GB, tunnel processes (TCP 1) |\n")
			b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		}
		if st.id == "ul2tp-step0" {
			first = r.TCP1.Median
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", st.what,
			f(r.TCP1.Median, "%.2f"), f(div(r.TCP1.Median, first), "%.2f"), f(div(r.TCP1.Median, prev), "%.2f"),
			f(r.TCP4.Median, "%.2f"), f(r.UDP64.Median, "%.0f"), f(r.VsVXLAN.TCP1, "%.2f"), f(r.TCP1.CPUTunnelSPerGB, "%.2f"))
		if st.id == "ul2tp-step0" || st.id == "ul2tp-step1" || st.id == "ul2tp-udp" {
			prev = r.TCP1.Median // later steps are variations of step 2
		}
	}
	return b.String()
}

func div(a, b *float64) *float64 {
	if a == nil || b == nil || *b == 0 {
		return nil
	}
	v := *a / *b
	return &v
}

func readEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = v
		}
	}
	return m, sc.Err()
}

func readRows(path string) ([]Row, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []Row
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 4 {
			continue
		}
		mtu, _ := strconv.Atoi(f[2])
		rows = append(rows, Row{ID: f[0], Label: f[1], InnerMTU: mtu, Note: f[3]})
	}
	return rows, nil
}

// iperf is the part of iperf3 -J output used here.
type iperf struct {
	Error string `json:"error"`
	End   struct {
		SumSent     iperfSum `json:"sum_sent"`
		SumReceived iperfSum `json:"sum_received"`
	} `json:"end"`
}

type iperfSum struct {
	Seconds     float64 `json:"seconds"`
	Bytes       float64 `json:"bytes"`
	Packets     float64 `json:"packets"`
	LostPackets float64 `json:"lost_packets"`
}

func collectTest(dir, test string, repeat int) *Test {
	t := &Test{Unit: "Gbit/s"}
	if test == "udp64" {
		t.Unit = "kpps"
	}
	var busy, sent, loss []float64
	for rep := 1; rep <= repeat; rep++ {
		base := filepath.Join(dir, fmt.Sprintf("%s.%d", test, rep))
		b, err := os.ReadFile(base + ".json")
		var ip iperf
		if err == nil {
			err = json.Unmarshal(b, &ip)
		}
		rcv := ip.End.SumReceived
		if err != nil || ip.Error != "" || rcv.Seconds <= 0 || rcv.Bytes <= 0 {
			t.Failures++
			continue
		}
		if test == "udp64" {
			got := rcv.Packets - rcv.LostPackets
			t.Samples = append(t.Samples, round(got/rcv.Seconds/1e3, 1))
			if s := ip.End.SumSent; s.Seconds > 0 {
				sent = append(sent, round(s.Packets/s.Seconds/1e3, 1))
			}
			if rcv.Packets > 0 {
				loss = append(loss, round(100*rcv.LostPackets/rcv.Packets, 1))
			}
		} else {
			t.Samples = append(t.Samples, round(rcv.Bytes*8/rcv.Seconds/1e9, 3))
		}
		c, err := readCPU(base + ".cpu")
		if err != nil || c.wall <= 0 {
			continue
		}
		gb := rcv.Bytes / 1e9
		t.CPUSystemSamples = append(t.CPUSystemSamples, round(c.sys/gb, 3))
		if c.npids > 0 {
			t.CPUTunnelSamples = append(t.CPUTunnelSamples, round(c.tunnel/gb, 3))
		}
		t.CPUAttributedSamples = append(t.CPUAttributedSamples, round(c.attributed/gb, 3))
		busy = append(busy, round(c.sys/c.wall, 2))
	}
	t.Median = median(t.Samples)
	t.CPUSystemSPerGB = median(t.CPUSystemSamples)
	t.CPUTunnelSPerGB = median(t.CPUTunnelSamples)
	t.CPUAttributedSPerGB = median(t.CPUAttributedSamples)
	t.BusyCores = median(busy)
	t.SentKpps = median(sent)
	t.LossPercent = median(loss)
	if test == "udp64" {
		t.KppsPerTunnelCore = perTunnelCore(t)
	}
	return t
}

// cpu is the difference between the B (before) and A (after) snapshots of
// one .cpu file: seconds of wall time, of non-idle CPU on all cores, of
// utime+stime of the tunnel processes present in both, and of everything
// attributed to the measurement (tunnel processes, iperf3 server and
// client, ksoftirqd).
type cpu struct {
	wall, sys, tunnel, attributed float64
	npids                         int
}

func readCPU(path string) (cpu, error) {
	var c cpu
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer f.Close()
	const hz = 100 // USER_HZ: /proc/stat and /proc/PID/stat count in 1/100 s on Linux
	type snap struct {
		time float64
		busy float64
		pids map[string]float64 // "kind pid" -> ticks
	}
	s := map[string]*snap{"B": {pids: map[string]float64{}}, "A": {pids: map[string]float64{}}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		tag, rest, _ := strings.Cut(sc.Text(), " ")
		sn := s[tag]
		if sn == nil {
			continue
		}
		kind, rest, _ := strings.Cut(rest, " ")
		switch kind {
		case "time":
			sn.time, _ = strconv.ParseFloat(strings.TrimSpace(rest), 64)
		case "cpu":
			// user nice system idle iowait irq softirq steal guest guest_nice;
			// guest time is already in user, idle and iowait are not work.
			f := strings.Fields(rest)
			for i, v := range f {
				if i == 3 || i == 4 || i >= 8 {
					continue
				}
				n, _ := strconv.ParseFloat(v, 64)
				sn.busy += n
			}
		case "pid", "srv", "ksoft", "self":
			pid, stat, _ := strings.Cut(rest, " ")
			if i := strings.LastIndexByte(stat, ')'); i >= 0 {
				// f[0] is field 3 (state); utime, stime, cutime, cstime
				// are fields 14 to 17
				f := strings.Fields(stat[i+1:])
				if len(f) > 14 {
					j := 11
					if kind == "self" {
						j = 13 // the shell's reaped children: iperf3 clients
					}
					a, _ := strconv.ParseFloat(f[j], 64)
					b, _ := strconv.ParseFloat(f[j+1], 64)
					sn.pids[kind+" "+pid] = a + b
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	b, a := s["B"], s["A"]
	if b.time == 0 || a.time == 0 {
		return c, errors.New("incomplete snapshot")
	}
	c.wall = a.time - b.time
	c.sys = (a.busy - b.busy) / hz
	for key, v := range b.pids {
		w, ok := a.pids[key]
		if !ok {
			continue
		}
		c.attributed += (w - v) / hz
		if strings.HasPrefix(key, "pid ") {
			c.tunnel += (w - v) / hz
			c.npids++
		}
	}
	return c, nil
}

// ratio is a's median over b's, nil when either is missing.
func ratio(a, b *Test) *float64 {
	if a == nil || b == nil || a.Median == nil || b.Median == nil || *b.Median == 0 {
		return nil
	}
	v := round(*a.Median / *b.Median, 3)
	return &v
}

func ratios(rows []Row) {
	var veth, vxlan *Row
	for i := range rows {
		switch rows[i].ID {
		case "veth":
			veth = &rows[i]
		case "vxlan":
			vxlan = &rows[i]
		}
	}
	for i := range rows {
		r := &rows[i]
		if veth != nil {
			r.VsVeth = Ratios{ratio(r.TCP1, veth.TCP1), ratio(r.TCP4, veth.TCP4), ratio(r.UDP64, veth.UDP64)}
		}
		if vxlan != nil {
			r.VsVXLAN = Ratios{ratio(r.TCP1, vxlan.TCP1), ratio(r.TCP4, vxlan.TCP4), ratio(r.UDP64, vxlan.UDP64)}
		}
	}
}

func parseGoBench(out string) *GoBench {
	g := &GoBench{
		Command:    "go test -run '^$' -bench . -benchmem ./datapath/... ./encap/... ./control/ppp ./control/ppp/call",
		ZeroAllocs: true,
	}
	pkg := ""
	for _, line := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "--- FAIL") {
			g.Failed = true
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // the GOMAXPROCS suffix
			}
		}
		b := Bench{Package: pkg, Name: name, AllocsPerOp: -1}
		b.N, _ = strconv.ParseInt(f[1], 10, 64)
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				b.NsPerOp = v
			case "MB/s":
				b.MBPerS = &v
			case "B/op":
				b.BytesPerOp = v
			case "allocs/op":
				b.AllocsPerOp = v
			}
		}
		if b.AllocsPerOp != 0 {
			g.ZeroAllocs = false
		}
		g.Benchmarks = append(g.Benchmarks, b)
	}
	if len(g.Benchmarks) == 0 {
		g.Failed, g.ZeroAllocs = true, false
	}
	if g.Failed {
		// keep what says why: build errors and FAIL lines
		var why []string
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "FAIL") || strings.Contains(line, ".go:") || strings.HasPrefix(line, "#") {
				why = append(why, line)
			}
		}
		if len(why) > 20 {
			why = why[:20]
		}
		g.Output = strings.Join(why, "\n")
	}
	return g
}

func median(v []float64) *float64 {
	if len(v) == 0 {
		return nil
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	m = round(m, 3)
	return &m
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// ---- printing -------------------------------------------------------------

func f(v *float64, format string) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf(format, *v)
}

func trio(r Ratios) string {
	return f(r.TCP1, "%.2f") + " / " + f(r.TCP4, "%.2f") + " / " + f(r.UDP64, "%.2f")
}

// Table returns the results table in Markdown.
func Table(res *Results) string {
	var b strings.Builder
	b.WriteString("| setup | inner MTU | TCP 1 stream Gbit/s | TCP 4 streams Gbit/s | UDP 64 B kpps received | vs veth (TCP1 / TCP4 / pps) | vs VXLAN (TCP1 / TCP4 / pps) | CPU s/GB, system (TCP 1) | CPU s/GB, attributed (TCP 1) | CPU s/GB, tunnel processes (TCP 1) |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | :---: | :---: | ---: | ---: | ---: |\n")
	for _, r := range res.Rows {
		if r.TCP1 == nil {
			fmt.Fprintf(&b, "| %s | – | %s | | | | | | | |\n", r.Label, r.Note)
			continue
		}
		tun := f(r.TCP1.CPUTunnelSPerGB, "%.2f")
		if r.TCP1.CPUTunnelSPerGB == nil {
			tun = "(kernel)"
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Label, r.InnerMTU,
			f(r.TCP1.Median, "%.2f"), f(r.TCP4.Median, "%.2f"), f(r.UDP64.Median, "%.0f"),
			trio(r.VsVeth), trio(r.VsVXLAN),
			f(r.TCP1.CPUSystemSPerGB, "%.2f"), f(r.TCP1.CPUAttributedSPerGB, "%.2f"), tun)
	}
	return b.String()
}

// GoBenchTable returns the micro-benchmarks in Markdown.
func GoBenchTable(g *GoBench) string {
	var b strings.Builder
	b.WriteString("| benchmark | ns/op | MB/s | B/op | allocs/op |\n| --- | ---: | ---: | ---: | ---: |\n")
	for _, x := range g.Benchmarks {
		fmt.Fprintf(&b, "| %s.%s | %.1f | %s | %.0f | %.0f |\n",
			filepath.Base(x.Package), strings.TrimPrefix(x.Name, "Benchmark"), x.NsPerOp, f(x.MBPerS, "%.0f"), x.BytesPerOp, x.AllocsPerOp)
	}
	return b.String()
}

func printReport(w io.Writer, res *Results) {
	fmt.Fprintf(w, "\nul2tp bench, %s: %s (iperf3 -t %d, median of %d; %s, %s cores, kernel %s)\n",
		res.Date, res.Command, res.DurationSeconds, res.Repeat, res.Host["cpu"], res.Host["ncpu"], res.Host["kernel"])
	fmt.Fprintf(w, "background load (cores busy, nothing of ours running): start %.2f, end %.2f\n\n",
		res.BackgroundBusyCores["start"], res.BackgroundBusyCores["end"])
	fmt.Fprint(w, Table(res))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "UDP 64 B detail (medians): sent kpps, loss %, received kpps per core the tunnel processes used, busy cores during the TCP 1-stream test")
	for _, r := range res.Rows {
		if r.UDP64 == nil {
			continue
		}
		per := perTunnelCore(r.UDP64)
		fmt.Fprintf(w, "  %-60s sent %7s kpps  loss %5s %%  %6s kpps/tunnel core  busy %s cores\n",
			r.Label, f(r.UDP64.SentKpps, "%.0f"), f(r.UDP64.LossPercent, "%.1f"), f(per, "%.0f"), f(r.TCP1.BusyCores, "%.2f"))
	}
	if l := ScrapeLine(res); l != "" {
		fmt.Fprintf(w, "\n%s\n", l)
	}
	if t := StepTable(res); t != "" {
		fmt.Fprintf(w, "\nul2tp step by step (UDP, cookie 4, l2spec default; × previous: against step 2 for steps 3-6):\n\n%s", t)
	}
	first := true
	for _, r := range res.Rows {
		if len(r.RSS) == 0 {
			continue
		}
		if first {
			fmt.Fprintln(w, "\nul2tpd resident set (VmRSS) after setup, largest after any measurement, at the end:")
			first = false
		}
		fmt.Fprintf(w, "  %-60s %s\n", r.Label, rssLine(r))
	}
	if g := res.GoBench; g != nil {
		fmt.Fprintf(w, "\nGo micro-benchmarks (%s):\n\n%s", g.Command, GoBenchTable(g))
		switch {
		case g.Failed:
			fmt.Fprintf(w, "FAILED (allocs/op of the packages that ran are above):\n%s\n", g.Output)
		case g.ZeroAllocs:
			fmt.Fprintln(w, "allocs/op: all 0")
		default:
			fmt.Fprintln(w, "allocs/op: NOT all 0")
		}
	}
	if len(res.Notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range res.Notes {
			fmt.Fprintln(w, "  -", n)
		}
	}
	if res.RuntimeSeconds > 0 {
		fmt.Fprintf(w, "\nruntime %d s\n", res.RuntimeSeconds)
	}
}

// ---- the chart ------------------------------------------------------------

var (
	blue   = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	orange = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	green  = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	red    = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
)

func short(r Row) string {
	switch r.ID {
	case "veth":
		return "veth"
	case "vxlan":
		return "VXLAN"
	case "openvpn":
		return "OpenVPN"
	case "fastd":
		return "fastd"
	case "ul2tp-udp":
		return "ul2tp UDP"
	case "ul2tp-ip":
		return "ul2tp IP"
	case "ul2tp-udp-seq":
		return "ul2tp UDP+seq"
	case "ul2tp-udp-scrape":
		return "ul2tp UDP+scraper"
	case "ul2tp-step0":
		return "ul2tp step 0"
	case "ul2tp-step1":
		return "ul2tp step 1"
	case "ul2tp-q2":
		return "ul2tp 2 queues"
	case "ul2tp-gmp1":
		return "ul2tp GOMAXPROCS=1"
	case "ul2tp-pin":
		return "ul2tp pinned"
	case "ul2tp-sockbuf":
		return "ul2tp sockbuf 0"
	case "ul2tp-ppp":
		return "ul2tp PPP"
	}
	return r.ID
}

func values(rows []Row, pick func(Row) *float64) plotter.Values {
	v := make(plotter.Values, len(rows))
	for i, r := range rows {
		if p := pick(r); p != nil {
			v[i] = *p
		}
	}
	return v
}

func med(t *Test) *float64 {
	if t == nil {
		return nil
	}
	return t.Median
}

func panel(title, ylabel string, names []string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

func bars(p *plot.Plot, v plotter.Values, w vg.Length, off vg.Length, c color.Color, legend string) error {
	b, err := plotter.NewBarChart(v, w)
	if err != nil {
		return err
	}
	b.Offset = off
	b.Color = c
	b.LineStyle.Width = 0
	p.Add(b)
	for _, x := range v {
		p.Y.Max = math.Max(p.Y.Max, 1.2*x) // headroom for the legend
	}
	if legend != "" {
		p.Legend.Add(legend, b)
	}
	return nil
}

func chart(res *Results, path string) error {
	rows := res.Rows
	if len(rows) == 0 {
		return errors.New("no rows")
	}
	names := make([]string, len(rows))
	for i, r := range rows {
		names[i] = short(r)
	}
	w := vg.Points(14)

	tcp := panel("TCP throughput", "Gbit/s", names)
	if err := bars(tcp, values(rows, func(r Row) *float64 { return med(r.TCP1) }), w, -w/2, blue, "1 stream"); err != nil {
		return err
	}
	if err := bars(tcp, values(rows, func(r Row) *float64 { return med(r.TCP4) }), w, w/2, orange, "4 streams"); err != nil {
		return err
	}

	pps := panel("UDP, 64-byte payloads", "kpps received", names)
	if err := bars(pps, values(rows, func(r Row) *float64 { return med(r.UDP64) }), 2*w, 0, green, ""); err != nil {
		return err
	}

	cpuP := panel("CPU per GB (TCP 1 stream)", "CPU seconds / GB", names)
	if err := bars(cpuP, values(rows, func(r Row) *float64 {
		if r.TCP1 == nil {
			return nil
		}
		return r.TCP1.CPUSystemSPerGB
	}), w*2/3, -w*2/3, red, "whole machine"); err != nil {
		return err
	}
	if err := bars(cpuP, values(rows, func(r Row) *float64 {
		if r.TCP1 == nil {
			return nil
		}
		return r.TCP1.CPUAttributedSPerGB
	}), w*2/3, 0, blue, "attributed"); err != nil {
		return err
	}
	if err := bars(cpuP, values(rows, func(r Row) *float64 {
		if r.TCP1 == nil {
			return nil
		}
		return r.TCP1.CPUTunnelSPerGB
	}), w*2/3, w*2/3, color.Gray{Y: 0x80}, "tunnel processes"); err != nil {
		return err
	}

	const width, height = 15 * vg.Inch, 5.5 * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(110), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	title := fmt.Sprintf("ul2tp bench %s — median of %d × %d s, %s cores", res.Date, res.Repeat, res.DurationSeconds, res.Host["ncpu"])
	head := plot.New().Title.TextStyle
	head.Font.Size = vg.Points(14)
	head.XAlign = draw.XCenter
	head.YAlign = draw.YTop
	dc.FillText(head, vg.Point{X: width / 2, Y: height - vg.Points(8)}, title)
	tiles := draw.Tiles{Rows: 1, Cols: 3, PadX: vg.Points(20), PadTop: vg.Points(36), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(12)}
	plots := [][]*plot.Plot{{tcp, pps, cpuP}}
	cs := plot.Align(plots, tiles, dc)
	for i, p := range plots[0] {
		p.Draw(cs[0][i])
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
