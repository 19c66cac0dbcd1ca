package control

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
		want Header
		err  error
	}{
		{"v2 zlb", "c802000c0005000700010002", Header{Version: V2, Length: 12, TunnelID: 5, SessionID: 7, Ns: 1, Nr: 2}, nil},
		{"v3 zlb", "c803000c0102030400090008", Header{Version: V3, Length: 12, TunnelID: 0x01020304, Ns: 9, Nr: 8}, nil},
		{"v2 reserved bits ignored", "c832000c000100000000ffff", Header{Version: V2, Length: 12, TunnelID: 1, Nr: 0xffff}, nil},
		{"empty", "", Header{}, ErrTruncated},
		{"one byte", "c8", Header{}, ErrTruncated},
		{"version 1", "c801000c0005000700010002", Header{}, ErrVersion},
		{"data message", "4802000c0005000700010002", Header{}, ErrNotControl},
		{"no L", "8802000c0005000700010002", Header{}, ErrFlags},
		{"no S", "c002000c0005000700010002", Header{}, ErrFlags},
		{"v2 O set", "ca02000c0005000700010002", Header{}, ErrFlags},
		{"v2 P set", "c902000c0005000700010002", Header{}, ErrFlags},
		{"short header", "c802000c00050007", Header{}, ErrTruncated},
		{"length below header", "c802000b0005000700010002", Header{}, ErrLength},
		{"length past buffer", "c802000d0005000700010002", Header{}, ErrLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseHeader(mustHex(t, tc.hex))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err == nil && h != tc.want {
				t.Fatalf("got %+v, want %+v", h, tc.want)
			}
		})
	}
}

// sccrq builds an SCCRQ holding one AVP of every shape.
func sccrq(t testing.TB, buf []byte) []byte {
	b := NewBuilder(buf, Header{Version: V2, TunnelID: 0}, MsgSCCRQ)
	b.AddUint16(AttrProtocolVersion, true, ProtocolVersionV2)
	b.AddUint32(AttrFramingCaps, true, FramingSync|FramingAsync)
	b.AddUint32(AttrBearerCaps, false, BearerAnalog)
	b.AddUint64(AttrTieBreaker, false, 0x0102030405060708)
	b.AddUint16(AttrFirmwareRevision, false, 0x0690)
	b.AddString(AttrHostName, true, "lac1")
	b.AddString(AttrVendorName, false, "ul2tp")
	b.AddUint16(AttrAssignedTunnelID, true, 0x1234)
	b.AddUint16(AttrReceiveWindowSize, false, 8)
	b.AddBytes(AttrChallenge, true, []byte{1, 2, 3, 4})
	b.AddVendor(311, 1, false, []byte{9, 9})
	b.AddEmpty(AttrSequencingRequired, true)
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestBuildParseSCCRQ(t *testing.T) {
	buf := make([]byte, 512)
	m, err := Parse(sccrq(t, buf))
	if err != nil {
		t.Fatal(err)
	}
	if m.Type() != MsgSCCRQ || m.Version != V2 || m.IsZLB() {
		t.Fatalf("type %v version %d", m.Type(), m.Version)
	}
	u16 := func(at AttrType) uint16 {
		a, ok := m.Find(at)
		if !ok {
			t.Fatalf("%s missing", at)
		}
		v, err := a.Uint16()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := u16(AttrAssignedTunnelID); v != 0x1234 {
		t.Errorf("tunnel id %#x", v)
	}
	if v := u16(AttrReceiveWindowSize); v != 8 {
		t.Errorf("window %d", v)
	}
	a, _ := m.Find(AttrProtocolVersion)
	if ver, rev, err := a.ProtocolVersion(); err != nil || ver != 1 || rev != 0 {
		t.Errorf("protocol version %d.%d %v", ver, rev, err)
	}
	a, _ = m.Find(AttrFramingCaps)
	if v, err := a.Uint32(); err != nil || v != 3 {
		t.Errorf("framing caps %d %v", v, err)
	}
	a, _ = m.Find(AttrTieBreaker)
	if v, err := a.Uint64(); err != nil || v != 0x0102030405060708 {
		t.Errorf("tie breaker %#x %v", v, err)
	}
	a, _ = m.Find(AttrHostName)
	if v, err := a.Bytes(); err != nil || string(v) != "lac1" || !a.Mandatory() {
		t.Errorf("host name %q %v m=%t", v, err, a.Mandatory())
	}
	a, _ = m.Find(AttrSequencingRequired)
	if err := a.Empty(); err != nil {
		t.Error(err)
	}
	// The vendor AVP is seen by the iterator but not by Find.
	var vendor int
	it := m.AVPs()
	for a, ok := it.Next(); ok; a, ok = it.Next() {
		if a.IsVendor() {
			vendor++
			if a.VendorID != 311 || a.Type != 1 || !bytes.Equal(a.Value, []byte{9, 9}) {
				t.Errorf("vendor avp %v", a)
			}
		}
	}
	if vendor != 1 || it.Err() != nil {
		t.Errorf("%d vendor AVPs, err %v", vendor, it.Err())
	}
	if a, ok := FirstUnknownMandatory(m, KnownV2); ok {
		t.Errorf("unknown mandatory %v", a)
	}
}

func TestTypedAccessors(t *testing.T) {
	buf := make([]byte, 256)
	b := NewBuilder(buf, Header{Version: V2, TunnelID: 3, SessionID: 4}, MsgCDN)
	b.AddResultCode(ResultCode{Result: CDNResultGeneralError, Error: ErrCodeUnknownMandatory, HasError: true, Message: []byte("avp 99")})
	b.AddBytes(AttrQ931Cause, true, []byte{0, 16, 2, 'x'})
	b.AddBytes(AttrCallErrors, true, mustHex(t, "0000"+"00000001"+"00000002"+"00000003"+"00000004"+"00000005"+"00000006"))
	b.AddBytes(AttrACCM, true, mustHex(t, "0000"+"ffffffff"+"000a0000"))
	b.AddBytes(AttrChallengeResponse, true, bytes.Repeat([]byte{0xab}, 16))
	b.AddBytes(AttrAssignedSessionID, true, []byte{1}) // bad length
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if m.SessionID != 4 || m.TunnelID != 3 || m.Type() != MsgCDN || !m.Type().IsCallMessage() {
		t.Fatalf("header %+v type %v", m.Header, m.Type())
	}
	a, _ := m.Find(AttrResultCode)
	rc, err := a.ResultCode()
	if err != nil || rc.Result != 2 || !rc.HasError || rc.Error != 8 || string(rc.Message) != "avp 99" {
		t.Errorf("result code %+v %v", rc, err)
	}
	a, _ = m.Find(AttrQ931Cause)
	if q, err := a.Q931Cause(); err != nil || q.Cause != 16 || q.Msg != 2 || string(q.Advisory) != "x" {
		t.Errorf("q931 %+v %v", q, err)
	}
	a, _ = m.Find(AttrCallErrors)
	if c, err := a.CallErrors(); err != nil || c != (CallErrors{1, 2, 3, 4, 5, 6}) {
		t.Errorf("call errors %+v %v", c, err)
	}
	a, _ = m.Find(AttrACCM)
	if s, r, err := a.ACCM(); err != nil || s != 0xffffffff || r != 0x000a0000 {
		t.Errorf("accm %x %x %v", s, r, err)
	}
	a, _ = m.Find(AttrChallengeResponse)
	if r, err := a.ChallengeResponse(); err != nil || r[15] != 0xab {
		t.Errorf("response %x %v", r, err)
	}
	a, _ = m.Find(AttrAssignedSessionID)
	if _, err := a.Uint16(); !errors.Is(err, ErrValueLength) {
		t.Errorf("1-byte session id: err %v", err)
	}
	// Result code with only a result.
	rcOnly := AVP{Value: []byte{0, 1}}
	if rc, err := rcOnly.ResultCode(); err != nil || rc.Result != 1 || rc.HasError {
		t.Errorf("result only %+v %v", rc, err)
	}
	if _, err := (AVP{Value: []byte{0, 1, 2}}).ResultCode(); !errors.Is(err, ErrValueLength) {
		t.Errorf("3-byte result code: %v", err)
	}
	if _, err := (AVP{Flags: avpFlagH, Value: []byte{0, 1}}).Uint16(); !errors.Is(err, ErrHidden) {
		t.Errorf("hidden: %v", err)
	}
}

func TestParseAVPErrors(t *testing.T) {
	const hdr = "c8020000000100000000" + "0000" // length patched below
	const msgType = "8008000000000001"          // Message Type SCCRQ
	for _, tc := range []struct {
		name string
		avps string
		err  error
	}{
		{"zlb", "", nil},
		{"type only", msgType, nil},
		{"avp length 5", msgType + "80050000000700", ErrAVPLength},
		{"avp length 0", msgType + "0000000000070000", ErrAVPLength},
		{"avp overruns", msgType + "800a00000007616263", ErrAVPLength},
		{"trailing 3 bytes", msgType + "800600", ErrAVPLength},
		{"first avp not type", "80080000000900010000", ErrNoType},
		{"type hidden", "c008000000000001", ErrNoType},
		{"type wrong length", "800700000000aa", ErrNoType},
		{"vendor type", "8008000100000001", ErrNoType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mustHex(t, hdr+tc.avps)
			b[2], b[3] = byte(len(b)>>8), byte(len(b))
			_, err := Parse(b)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
		})
	}
}

func TestFirstUnknownMandatory(t *testing.T) {
	buf := make([]byte, 128)
	for _, tc := range []struct {
		name string
		add  func(b *Builder)
		want AttrType
		ok   bool
	}{
		{"none", func(b *Builder) { b.AddString(AttrHostName, true, "x") }, 0, false},
		{"unknown optional skipped", func(b *Builder) { b.AddBytes(200, false, nil) }, 0, false},
		{"vendor optional skipped", func(b *Builder) { b.AddVendor(9, 1, false, nil) }, 0, false},
		{"unknown mandatory", func(b *Builder) { b.AddBytes(200, false, nil); b.AddBytes(201, true, nil) }, 201, true},
		{"vendor mandatory", func(b *Builder) { b.AddVendor(9, 5, true, nil) }, 5, true},
		{"reserved 20 mandatory", func(b *Builder) { b.AddBytes(20, true, nil) }, 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder(buf, Header{Version: V2}, MsgICRQ)
			tc.add(&b)
			msg, err := b.Finish()
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(msg)
			if err != nil {
				t.Fatal(err)
			}
			a, ok := FirstUnknownMandatory(m, KnownV2)
			if ok != tc.ok || (ok && a.Type != tc.want) {
				t.Fatalf("got %v %t, want %d %t", a, ok, tc.want, tc.ok)
			}
		})
	}
	// A known AVP with a reserved bit set counts as unknown.
	// header, Message Type ICRQ, Host Name "x" with M and a reserved bit
	msg := mustHex(t, "c802001b"+"0000000000000000"+"80080000"+"0000000a"+"8407"+"0000"+"0007"+"78")
	m, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := FirstUnknownMandatory(m, KnownV2); !ok || a.Type != AttrHostName || !a.Reserved() {
		t.Fatalf("reserved bit: got %v %t", a, ok)
	}
}

func TestBuilderFull(t *testing.T) {
	buf := make([]byte, 30)
	b := NewBuilder(buf, Header{Version: V2}, MsgHELLO)
	b.AddString(AttrHostName, true, "0123456789")
	b.AddString(AttrVendorName, true, "x") // does not fit
	if _, err := b.Finish(); !errors.Is(err, ErrBufferFull) {
		t.Fatalf("err %v", err)
	}
	b = NewBuilder(buf[:5], Header{Version: V2}, MsgHELLO)
	if _, err := b.Finish(); !errors.Is(err, ErrBufferFull) {
		t.Fatalf("short buffer: err %v", err)
	}
	b = NewBuilder(make([]byte, 4096), Header{Version: V2}, MsgHELLO)
	b.AddBytes(AttrHostName, true, make([]byte, MaxAVPLen))
	if _, err := b.Finish(); !errors.Is(err, ErrValueLength) {
		t.Fatalf("oversize AVP: err %v", err)
	}
}

func TestV3RoundTrip(t *testing.T) {
	buf := make([]byte, 64)
	b := NewBuilder(buf, Header{Version: V3, TunnelID: 0xdeadbeef}, MsgSCCRQ)
	b.AddUint32(AttrAssignedConnID, true, 0x11223344)
	msg, _ := b.Finish()
	SetNsNr(msg, 7, 9)
	m, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != V3 || m.TunnelID != 0xdeadbeef || m.Ns != 7 || m.Nr != 9 {
		t.Fatalf("header %+v", m.Header)
	}
	a, _ := m.Find(AttrAssignedConnID)
	if v, err := a.Uint32(); err != nil || v != 0x11223344 {
		t.Fatalf("ccid %#x %v", v, err)
	}
}

func TestZeroMessage(t *testing.T) {
	var m Message
	it := m.AVPs()
	if _, ok := it.Next(); ok || m.Type() != 0 || m.IsZLB() {
		t.Fatal("zero Message not empty")
	}
}

func TestZLB(t *testing.T) {
	var buf [HeaderLen]byte
	m, err := Parse(AppendZLB(buf[:], V2, 42, 3, 4))
	if err != nil || !m.IsZLB() || m.Type() != 0 || m.TunnelID != 42 || m.Ns != 3 || m.Nr != 4 {
		t.Fatalf("%+v %v", m, err)
	}
}

var sinkInt int

func BenchmarkParse(b *testing.B) {
	msg := sccrq(b, make([]byte, 512))
	b.ReportAllocs()
	for b.Loop() {
		m, err := Parse(msg)
		if err != nil {
			b.Fatal(err)
		}
		it := m.AVPs()
		for a, ok := it.Next(); ok; a, ok = it.Next() {
			sinkInt += int(a.Type)
		}
	}
}

func BenchmarkBuild(b *testing.B) {
	buf := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		sinkInt += len(sccrq(b, buf))
	}
}
