package main

// strongSwan in front of the container's LNS (docs/container.md): the
// shipped docs/container/swanctl.conf against initiators configured as
// the built-in L2TP/IPsec clients are.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// charonPath is where Debian's strongswan-charon puts the IKE daemon.
const charonPath = "/usr/lib/ipsec/charon"

// startCharon runs strongSwan's charon in ns with its own strongswan.conf,
// vici socket and log in dir, loads swanctlConf into it, and stops it
// when the test ends. It returns the log's path.
func startCharon(t *testing.T, ns, dir, swanctlConf string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	vici := "unix://" + filepath.Join(dir, "charon.vici")
	logPath := filepath.Join(dir, "charon.log")
	conf := fmt.Sprintf(`charon {
    load_modular = yes
    install_routes = no
    plugins {
        include /etc/strongswan.d/charon/*.conf
        vici {
            socket = %s
        }
    }
    filelog {
        test {
            path = %s
            default = 1
            cfg = 2
            flush_line = yes
        }
    }
}
`, vici, logPath)
	confPath := filepath.Join(dir, "strongswan.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// A tmpfs over /run in a mount namespace of its own: charon's PID
	// file is /run/charon.pid, one per daemon.
	cmd := exec.Command("ip", "netns", "exec", ns, "unshare", "-m", "sh", "-c",
		"mount -t tmpfs tmpfs /run && exec "+charonPath)
	cmd.Env = append(os.Environ(), "STRONGSWAN_CONF="+confPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start charon in %s: %v", ns, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	var out string
	var err error
	for range 50 {
		if out, err = runCmd(20*time.Second, "swanctl", "--load-all", "--uri", vici, "--file", swanctlConf); err == nil {
			return logPath
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("swanctl --load-all --file %s in %s: %v\n%s", swanctlConf, ns, err, out)
	return ""
}

// TestE2EContainerIPsec loads docs/container/swanctl.conf, unchanged, into
// strongSwan beside the LNS (namespace B) and lets an initiator in A set
// up the L2TP child as each kind of built-in client would: Windows'
// documented default (3des-sha1-modp1024), Android's group 2 with AES,
// and Apple's first choice over NAT-T (UDP 4500, forced). Main mode with
// the pre-shared key must agree on the client's proposal, and quick mode
// on ESP in transport mode for udp/1701. Where the kernel has ESP the
// SAs are installed and the L2TP call of the container's configuration
// runs through them: ping crosses it and ESP counts the packets. On a
// kernel without ESP (CONFIG_INET_ESP off) installing the SAs fails; the
// test checks the negotiation and says so.
//
// It needs strongSwan (apt-get install strongswan-charon strongswan-swanctl
// libstrongswan-standard-plugins, the last for 3DES; .ci/deps installs
// them) and skips without it, or fails with CI set.
func TestE2EContainerIPsec(t *testing.T) {
	if _, err := os.Stat(charonPath); err != nil {
		skipOrFail(t, "needs strongSwan's charon (%v): apt-get install strongswan-charon strongswan-swanctl libstrongswan-standard-plugins", err)
	}
	if _, err := exec.LookPath("swanctl"); err != nil {
		skipOrFail(t, "needs swanctl: apt-get install strongswan-swanctl: %v", err)
	}
	server, err := filepath.Abs(filepath.Join(containerDir, "swanctl.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		ike, esp   string // the initiator's proposals
		encap      bool   // force NAT-T
		ikeSel     string // what the responder must select
		espSel     string
		needsPlugs string // a plugin the proposal needs, or ""
	}{
		{"windows-3des", "3des-sha1-modp1024", "3des-sha1", false,
			"IKE:3DES_CBC/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", "ESP:3DES_CBC/HMAC_SHA1_96/NO_EXT_SEQ", "openssl"},
		{"android-modp1024", "aes256-sha1-modp1024", "aes128-sha1", false,
			"IKE:AES_CBC_256/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", "ESP:AES_CBC_128/HMAC_SHA1_96/NO_EXT_SEQ", ""},
		{"apple-natt", "aes256-sha256-modp2048", "aes256-sha256", true,
			"IKE:AES_CBC_256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", "ESP:AES_CBC_256/HMAC_SHA2_256_128/NO_EXT_SEQ", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.needsPlugs != "" {
				if _, err := os.Stat("/usr/lib/ipsec/plugins/libstrongswan-" + c.needsPlugs + ".so"); err != nil {
					skipOrFail(t, "3DES needs strongSwan's %s plugin (libstrongswan-standard-plugins): %v", c.needsPlugs, err)
				}
			}
			e := newEnv(t)
			client := filepath.Join(e.dir, "client-swanctl.conf")
			conf := fmt.Sprintf(`connections {
    lns {
        version = 1
        aggressive = no
        remote_addrs = %s
        proposals = %s
        encap = %s
        local { auth = psk }
        remote { auth = psk }
        children {
            l2tp {
                mode = transport
                local_ts = dynamic[udp/1701]
                remote_ts = dynamic[udp/1701]
                esp_proposals = %s
            }
        }
    }
}
secrets {
    ike-l2tp {
        secret = "change this pre-shared key"
    }
}
`, e.outer4(2), c.ike, map[bool]string{false: "no", true: "yes"}[c.encap], c.esp)
			if err := os.WriteFile(client, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			lnsLog := startCharon(t, e.nsB, filepath.Join(e.dir, "charon-b"), server)
			lacLog := startCharon(t, e.nsA, filepath.Join(e.dir, "charon-a"), client)
			vici := "unix://" + filepath.Join(e.dir, "charon-a", "charon.vici")
			out, initErr := runCmd(60*time.Second, "swanctl", "--initiate", "--uri", vici, "--ike", "lns", "--child", "l2tp", "--timeout", "30")
			b, _ := os.ReadFile(lnsLog)
			log := string(b)
			for _, want := range []string{
				"selected proposal: " + c.ikeSel,
				"selected proposal: " + c.espSel,
				"found matching child config \"l2tp\"",
			} {
				if !strings.Contains(log, want) {
					t.Errorf("the LNS's charon did not log %q:\n%s\ninitiator: %v\n%s", want, log, initErr, out)
				}
			}
			if c.encap && !strings.Contains(log, "[4500]") {
				t.Errorf("NAT-T forced, but the LNS's charon saw nothing on port 4500:\n%s", log)
			}
			if initErr != nil {
				if b, _ := os.ReadFile(lacLog); strings.Contains(string(b), "unable to install inbound and outbound IPsec SA") {
					t.Logf("proposals agreed; the SAs were not installed (a kernel without ESP?): the L2TP call over IPsec is not tried\n%s", out)
					return
				}
				t.Fatalf("swanctl --initiate: %v\n%s", initErr, out)
			}
			// The kernel has ESP: the container's LNS behind the SAs.
			u := newUnprivileged(t, e.bin, 0o666, "net_admin")
			u.dir = containerFiles(t, "mschap-v2")
			e.startDaemonAs(e.nsB, u, "--config", filepath.Join(u.dir, "ul2tpd.toml"))
			lac := e.startDaemon(e.nsA, "--config", writeLAC(t, e, e.outer4(2)))
			checkCalls(t, lac)
			e.ping(e.nsA, "10.99.0.1")
			if st := e.ip("-n", e.nsB, "-s", "xfrm", "state"); !strings.Contains(st, "proto esp") || !strings.Contains(st, "mode transport") {
				t.Errorf("no ESP transport-mode SA in %s:\n%s", e.nsB, st)
			}
		})
	}
}
