package encap

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Golden L2TPv3 data packets sent by the Linux kernel (Debian 12, 6.1),
// captured by testdata/capture-golden.sh. Each file is one session layout:
// encap x family x cookie x l2spec (x seq).

const goldenDir = "testdata/golden"

// minGoldenFiles is what capture-golden.sh writes: 2 encaps x 2 families x
// (3 cookies x 2 l2specs + 1 with seq) = 28; at least the 24 non-seq ones.
const minGoldenFiles = 24

type goldenPacket struct {
	L2TP  string  `json:"l2tp"`  // UDP payload (udp) or IP payload (ip)
	Inner string  `json:"inner"` // the Ethernet frame carried
	Ns    *uint32 `json:"ns"`    // null: S bit clear or no sublayer
}

type goldenFile struct {
	Encap     string         `json:"encap"`
	Family    int            `json:"family"`
	SessionID uint32         `json:"session_id"`
	Cookie    string         `json:"cookie"`
	L2Spec    string         `json:"l2spec"`
	Seq       bool           `json:"seq"`
	Packets   []goldenPacket `json:"packets"`
}

func TestGoldenKernelPackets(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) < minGoldenFiles {
		t.Fatalf("%s holds %d golden files, want at least %d (run testdata/capture-golden.sh)",
			goldenDir, len(files), minGoldenFiles)
	}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var g goldenFile
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&g); err != nil {
				t.Fatalf("parse: %v", err)
			}
			checkGolden(t, name, &g)
		})
	}
}

func checkGolden(t *testing.T, name string, g *goldenFile) {
	if g.Family != 4 && g.Family != 6 {
		t.Fatalf("family %d", g.Family)
	}
	if len(g.Packets) == 0 {
		t.Fatal("no packets")
	}
	encap, err := ParseEncap(g.Encap)
	if err != nil {
		t.Fatal(err)
	}
	cookie, err := ParseCookie(g.Cookie)
	if err != nil {
		t.Fatal(err)
	}
	l2spec, err := ParseL2Spec(g.L2Spec)
	if err != nil {
		t.Fatal(err)
	}
	// the file name states the layout too; catch a mislabelled file
	wantName := fmt.Sprintf("%s-v%d-cookie%d-%s", g.Encap, g.Family, cookie.Len(), g.L2Spec)
	if g.Seq {
		wantName += "-seq"
	}
	if name != wantName {
		t.Errorf("file name %q does not match its contents (%q)", name, wantName)
	}
	if g.Seq && l2spec != L2SpecDefault {
		t.Errorf("seq with l2spec %s: no S bit to carry it", l2spec)
	}

	layout := V3Layout{Encap: encap, Cookie: cookie, L2Spec: l2spec}
	hl := layout.HeaderLen()
	for i, p := range g.Packets {
		l2, err := hex.DecodeString(p.L2TP)
		if err != nil {
			t.Fatalf("packet %d: l2tp: %v", i, err)
		}
		inner, err := hex.DecodeString(p.Inner)
		if err != nil {
			t.Fatalf("packet %d: inner: %v", i, err)
		}
		if len(inner) < 14 {
			t.Fatalf("packet %d: inner frame of %d bytes", i, len(inner))
		}
		if g.Seq && p.Ns == nil {
			t.Errorf("packet %d: session has seq but the kernel sent no S bit", i)
		}

		sid, err := PeekV3SessionID(l2, encap)
		if err != nil {
			t.Errorf("packet %d: PeekV3SessionID: %v", i, err)
		} else if sid != g.SessionID {
			t.Errorf("packet %d: PeekV3SessionID = %d (%#08x), want %d (%#08x)",
				i, sid, sid, g.SessionID, g.SessionID)
		}

		if got, want := hl, len(l2)-len(inner); got != want {
			t.Errorf("packet %d: HeaderLen = %d, kernel header is %d bytes", i, got, want)
		}
		d, err := layout.Decode(l2)
		if err != nil {
			t.Errorf("packet %d: Decode: %v", i, err)
		} else {
			if d.PayloadOffset < 0 || d.PayloadOffset > len(l2) || !bytes.Equal(l2[d.PayloadOffset:], inner) {
				t.Errorf("packet %d: Decode PayloadOffset = %d, inner frame starts at %d",
					i, d.PayloadOffset, len(l2)-len(inner))
			}
			if d.HasSeq != (p.Ns != nil) {
				t.Errorf("packet %d: Decode HasSeq = %v, want %v", i, d.HasSeq, p.Ns != nil)
			} else if p.Ns != nil && d.Ns != *p.Ns {
				t.Errorf("packet %d: Decode Ns = %d, want %d", i, d.Ns, *p.Ns)
			}
		}

		var ns uint32
		if p.Ns != nil {
			ns = *p.Ns
		}
		buf := make([]byte, MaxV3HeaderLen+16)
		for j := range buf {
			buf[j] = 0xa5 // Encode must write every header byte
		}
		n := layout.Encode(buf, g.SessionID, ns, p.Ns != nil)
		if n != hl {
			t.Errorf("packet %d: Encode returned %d, HeaderLen is %d", i, n, hl)
		}
		if hl > len(l2) {
			continue
		}
		if want := l2[:hl]; !bytes.Equal(buf[:hl], want) {
			t.Errorf("packet %d: Encode header differs from the kernel's:\n got  %x\n want %x\n %s",
				i, buf[:hl], want, diffBytes(buf[:hl], want))
		}
	}
}

// diffBytes lists the offsets where a and b differ.
func diffBytes(a, b []byte) string {
	var s []string
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			s = append(s, fmt.Sprintf("@%d %02x!=%02x", i, a[i], b[i]))
		}
	}
	return "differs (offset got!=want): " + strings.Join(s, ", ")
}
