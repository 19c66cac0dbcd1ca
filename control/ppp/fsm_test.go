package ppp

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// fakeOptions acks or naks every request as told and requests nothing.
type fakeOptions struct{ good bool }

func (o *fakeOptions) Reset()                        {}
func (o *fakeOptions) AppendRequest(b []byte) []byte { return b }
func (o *fakeOptions) Judge(req, out []byte, _ bool) (byte, []byte) {
	if o.good {
		return ConfAck, append(out, req...)
	}
	return ConfNak, append(out, optMRU, 4, 5, 0xdc)
}
func (o *fakeOptions) Acked([]byte)          {}
func (o *fakeOptions) Naked([]byte) error    { return nil }
func (o *fakeOptions) Rejected([]byte) error { return nil }

// actionLog records the layer actions.
type actionLog []string

func (a *actionLog) up(*fsm)       { *a = append(*a, "tlu") }
func (a *actionLog) down(*fsm)     { *a = append(*a, "tld") }
func (a *actionLog) started(*fsm)  { *a = append(*a, "tls") }
func (a *actionLog) finished(*fsm) { *a = append(*a, "tlf") }

// TestFSMTable checks every event in every state against the state
// transition table of RFC 1661 section 4.1 (next state and this-layer
// actions). Events the RFC marks illegal or that cannot occur leave the
// state alone.
func TestFSMTable(t *testing.T) {
	const (
		I, S, C, P, G, T = Initial, Starting, Closed, Stopped, Closing, Stopping
		R, K, A, O       = ReqSent, AckRcvd, AckSent, Opened
	)
	all := [10]State{I, S, C, P, G, T, R, K, A, O}
	table := []struct {
		event string
		next  [10]State
		// actions per state where the RFC has a this-layer action
		actions map[State]string
	}{
		{"Up", [10]State{C, R, C, P, G, T, R, K, A, O}, nil},
		{"Down", [10]State{I, S, I, S, I, S, S, S, S, S}, map[State]string{P: "tls", O: "tld"}},
		{"Open", [10]State{S, S, R, P, T, T, R, K, A, O}, map[State]string{I: "tls"}},
		{"Close", [10]State{I, I, C, C, G, G, G, G, G, G}, map[State]string{S: "tlf", O: "tld"}},
		{"TO+", [10]State{I, S, C, P, G, T, R, R, A, O}, nil},
		{"TO-", [10]State{I, S, C, P, C, P, P, P, P, O}, map[State]string{G: "tlf", T: "tlf", R: "tlf", K: "tlf", A: "tlf"}},
		{"RCR+", [10]State{I, S, C, A, G, T, A, O, A, A}, map[State]string{K: "tlu", O: "tld"}},
		{"RCR-", [10]State{I, S, C, R, G, T, R, K, R, R}, map[State]string{O: "tld"}},
		{"RCA", [10]State{I, S, C, P, G, T, K, R, O, R}, map[State]string{A: "tlu", O: "tld"}},
		{"RCN", [10]State{I, S, C, P, G, T, R, R, A, R}, map[State]string{O: "tld"}},
		{"RTR", [10]State{I, S, C, P, G, T, R, R, R, T}, map[State]string{O: "tld"}},
		{"RTA", [10]State{I, S, C, P, C, P, R, R, A, R}, map[State]string{G: "tlf", T: "tlf", O: "tld"}},
		{"RUC", [10]State{I, S, C, P, G, T, R, K, A, O}, nil},
		{"RXJ+", [10]State{I, S, C, P, G, T, R, R, A, O}, nil},
		{"RXJ-", [10]State{I, S, C, P, C, P, P, P, P, T}, map[State]string{C: "tlf", P: "tlf", G: "tlf", T: "tlf", R: "tlf", K: "tlf", A: "tlf", O: "tld"}},
	}
	for _, row := range table {
		for i, from := range all {
			t.Run(fmt.Sprintf("%s/%v", row.event, from), func(t *testing.T) {
				var log actionLog
				var sent []byte
				opts := &fakeOptions{good: row.event != "RCR-"}
				f := newFSM(0xc021, opts, Timers{}, &log, func(_ uint16, p []byte) { sent = append(sent, p[0]) })
				f.state = from
				f.reqID = 9
				if from.timed() {
					f.deadline = t0.Add(time.Hour) // the timer runs in these states
				}
				pkt := func(code byte, id byte, data ...byte) []byte { return appendPacket(nil, code, id, data) }
				switch row.event {
				case "Up":
					f.Up(t0)
				case "Down":
					f.Down(t0)
				case "Open":
					f.Open(t0)
				case "Close":
					f.Close(t0, "")
				case "TO+", "TO-":
					if from.timed() {
						f.deadline = t0
					}
					f.restart = 0
					if row.event == "TO+" {
						f.restart = 1
					}
					f.Tick(t0.Add(time.Second))
				case "RCR+", "RCR-":
					f.Input(t0, pkt(ConfReq, 1, optMRU, 4, 5, 0xdc))
				case "RCA":
					f.Input(t0, pkt(ConfAck, 9))
				case "RCN":
					f.Input(t0, pkt(ConfNak, 9))
				case "RTR":
					f.Input(t0, pkt(TermReq, 1))
				case "RTA":
					f.Input(t0, pkt(TermAck, 1))
				case "RUC":
					f.Input(t0, pkt(99, 1))
				case "RXJ+":
					f.Input(t0, pkt(CodeRej, 1, 99, 1, 0, 4))
				case "RXJ-":
					f.Input(t0, pkt(CodeRej, 1, ConfReq, 1, 0, 4))
				}
				if f.state != row.next[i] {
					t.Errorf("%v --%s--> %v, want %v (sent codes %v)", from, row.event, f.state, row.next[i], sent)
				}
				if got, want := strings.Join(log, ","), row.actions[from]; got != want {
					t.Errorf("%v --%s--> actions %q, want %q", from, row.event, got, want)
				}
				if f.state.timed() != !f.deadline.IsZero() {
					t.Errorf("in %v the restart timer is %v", f.state, f.deadline)
				}
			})
		}
	}
}
