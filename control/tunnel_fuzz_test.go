package control

import (
	"math/rand/v2"
	"testing"
	"time"
)

// fuzzOps reads a fuzz input as operations on one Tunnel.
type fuzzOps struct {
	b []byte
}

func (f *fuzzOps) byte() byte {
	if len(f.b) == 0 {
		return 0
	}
	c := f.b[0]
	f.b = f.b[1:]
	return c
}

func (f *fuzzOps) bytes(n int) []byte {
	n = min(n, len(f.b))
	p := f.b[:n]
	f.b = f.b[n:]
	return p
}

// buildFuzzMsg builds a message to x with the Ns it expects, of a type
// and with AVPs chosen by the input: often valid, sometimes not.
func buildFuzzMsg(x *Tunnel, f *fuzzOps) []byte {
	typ := MessageType(f.byte() % 17)
	if typ == 0 {
		typ = MsgHELLO
	}
	session := uint32(f.byte() % 4)
	mask := uint32(f.byte()) | uint32(f.byte())<<8
	buf := make([]byte, 2048)
	st := x.Status()
	b := NewBuilder(buf, Header{Version: V2, TunnelID: x.LocalID(), SessionID: uint16(session),
		Ns: st.Transport.Nr, Nr: st.Transport.Ns}, typ)
	v := f.byte()
	if mask&1 != 0 {
		b.AddUint16(AttrProtocolVersion, true, ProtocolVersionV2)
		b.AddString(AttrHostName, true, "fuzz")
		b.AddUint32(AttrFramingCaps, true, 3)
	}
	if mask&2 != 0 {
		b.AddUint16(AttrAssignedTunnelID, true, uint16(v)+1)
	}
	if mask&4 != 0 {
		b.AddUint16(AttrAssignedSessionID, true, uint16(v%5))
	}
	if mask&8 != 0 {
		b.AddResultCode(ResultCode{Result: uint16(v % 12), Error: uint16(v / 12), HasError: v&1 != 0, Message: f.bytes(3)})
	}
	if mask&16 != 0 {
		b.AddBytes(AttrChallenge, true, f.bytes(16))
	}
	if mask&32 != 0 {
		var r [16]byte
		copy(r[:], f.bytes(16))
		b.AddBytes(AttrChallengeResponse, true, r[:])
	}
	if mask&64 != 0 {
		b.AddUint16(AttrReceiveWindowSize, true, uint16(v))
	}
	if mask&128 != 0 {
		b.AddUint32(AttrTxConnectSpeed, true, uint32(v)*1000)
		b.AddUint32(AttrFramingType, true, 1)
		b.AddEmpty(AttrSequencingRequired, true)
	}
	if mask&256 != 0 {
		b.AddBytes(AttrCallErrors, true, make([]byte, 26))
		b.AddBytes(AttrACCM, true, make([]byte, 10))
	}
	if mask&512 != 0 {
		b.AddUint64(AttrTieBreaker, false, uint64(v))
		b.AddUint32(AttrCallSerialNumber, true, uint32(v))
	}
	if mask&1024 != 0 {
		b.AddBytes(AttrRandomVector, true, f.bytes(16))
		b.AddHidden(AttrAssignedSessionID, true, []byte{0, v}, []byte("k"), int(v%4))
	}
	if mask&2048 != 0 {
		b.AddBytes(AttrType(200+uint16(v%3)), v&1 != 0, f.bytes(int(v%5)))
	}
	if mask&4096 != 0 {
		b.AddBytes(AttrType(v%40), v&2 != 0, f.bytes(int(v%9)))
	}
	msg, err := b.Finish()
	if err != nil {
		return nil
	}
	if mask&8192 != 0 && len(msg) > 0 {
		msg[int(v)%len(msg)] ^= f.byte() // damage
	}
	return msg
}

// checkSent fails on a transmitted packet that is malformed or that a
// peer could not take: a bad header, an AVP we would call unknown
// mandatory, a message type of no RFC 2661 message, a hidden AVP that
// does not unhide.
func checkSent(t *testing.T, out TunnelOutput, secret []byte) {
	t.Helper()
	var scratch [MaxAVPLen]byte
	for _, p := range out.Transmit {
		m, err := Parse(p)
		if err != nil {
			t.Fatalf("sent malformed %x: %v", p, err)
		}
		if m.Version != V2 || int(m.Length) != len(p) {
			t.Fatalf("sent %x: version %d length %d", p, m.Version, m.Length)
		}
		if m.IsZLB() {
			continue
		}
		switch m.Type() {
		case MsgSCCRQ, MsgSCCRP, MsgSCCCN, MsgStopCCN, MsgHELLO, MsgOCRQ, MsgOCRP, MsgOCCN,
			MsgICRQ, MsgICRP, MsgICCN, MsgCDN, MsgWEN, MsgSLI:
		default:
			t.Fatalf("sent message type %d", m.Type())
		}
		if a, ok := FirstUnknownMandatory(m, KnownV2); ok {
			t.Fatalf("sent unknown mandatory %v", a)
		}
		it := m.AVPs()
		for a, ok := it.Next(); ok; a, ok = it.Next() {
			if a.Hidden() {
				if _, err := Unhide(scratch[:], a, secret, it.RandomVector()); err != nil {
					t.Fatalf("sent hidden %v: %v", a, err)
				}
			}
		}
		if m.Type() == MsgStopCCN || m.Type() == MsgCDN {
			if _, ok := m.Find(AttrResultCode); !ok {
				t.Fatalf("%s without result code", m.Type())
			}
		}
	}
}

func FuzzTunnel(f *testing.F) {
	f.Add([]byte{})
	// Responder: a valid SCCRQ, an SCCCN, an ICRQ, an ICCN, ticks.
	f.Add([]byte{1, 1, 1, 0, 3, 0, 7, 1, 3, 0, 0, 0, 0, 1, 10, 0, 6, 0, 4, 1, 9, 2, 200, 1, 12, 1, 128, 0, 1, 2, 200, 2, 255})
	// Initiator with a secret, hiding: garbage, SCCRP, StopCCN.
	f.Add([]byte{6, 0, 5, 200, 1, 2, 3, 4, 5, 1, 2, 0, 3, 0, 9, 1, 4, 0, 8, 0, 7, 2, 100})
	for _, name := range []string{"xl2tpd-plain", "l2tpns-challenge"} {
		var in []byte
		for _, p := range readGolden(&testing.T{}, name) {
			if len(p.data) < 250 {
				in = append(in, 0, byte(len(p.data)))
				in = append(in, p.data...)
			}
		}
		f.Add(append([]byte{1}, in...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ops := &fuzzOps{b: data}
		flags := ops.byte()
		cfg := TunnelConfig{LocalID: 7, HostName: "fuzz", MaxCalls: 3,
			Rand: rand.NewChaCha8([32]byte{1}), Transport: TransportConfig{MaxQueue: 8}}
		if flags&2 != 0 {
			cfg.Secret = []byte("k")
			cfg.HideAVPs = flags&4 != 0
		}
		role := Role(flags & 1)
		x, err := NewTunnel(cfg, role)
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		if role == Initiator {
			out, _ := x.Open(now)
			checkSent(t, out, cfg.Secret)
		}
		for n := 0; len(ops.b) > 0 && n < 200; n++ {
			var out TunnelOutput
			switch ops.byte() % 7 {
			case 0:
				out = x.Receive(ops.bytes(int(ops.byte())), now)
			case 1, 6:
				if msg := buildFuzzMsg(x, ops); msg != nil {
					out = x.Receive(msg, now)
				}
			case 2:
				now = now.Add(time.Duration(ops.byte()) * 100 * time.Millisecond)
				out = x.Tick(now)
			case 3:
				_, out, _ = x.OpenCall(CallParams{Kind: CallKind(ops.byte()%3 + 1), Called: "1"}, now)
			case 4:
				out, _ = x.CloseCall(uint32(ops.byte()%4), Result{Code: uint16(ops.byte())}, now)
			case 5:
				out, _ = x.Close(Result{Code: uint16(ops.byte()), Message: "x"}, now)
			}
			checkSent(t, out, cfg.Secret)
			if d, ok := x.Deadline(); ok && x.Done() {
				t.Fatalf("done with a deadline %v", d)
			}
		}
		// Time heals: with the clock run out, the tunnel is done or
		// established, never stuck in between.
		for range 100 {
			d, ok := x.Deadline()
			if !ok {
				break
			}
			now = d
			checkSent(t, x.Tick(now), cfg.Secret)
		}
		if s := x.State(); s != StateClosed && s != StateEstablished && s != StateIdle {
			t.Fatalf("left in %s", s)
		}
	})
}
