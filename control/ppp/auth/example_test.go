package auth_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/ul2tp/ul2tp/control/ppp/auth"
)

// An LNS checks a LAC with MS-CHAPv2 against a chap-secrets file; the
// frames go straight across here, where a PPP link would carry them in
// protocol auth.ProtoCHAP.
func Example() {
	secrets, err := auth.ParseSecrets(strings.NewReader(`alice * "open sesame" 10.0.0.5`), "chap-secrets")
	if err != nil {
		panic(err)
	}
	lns := auth.NewAuthenticator(auth.MSCHAPv2, auth.AuthenticatorConfig{Name: "lns", Secret: secrets.Secret})
	lac := auth.NewPeer(auth.MSCHAPv2, auth.PeerConfig{User: "alice", Password: "open sesame"})
	now := time.Now()
	lac.Start(now)
	for _, challenge := range lns.Start(now) {
		for _, response := range lac.Receive(challenge, now) {
			for _, verdict := range lns.Receive(response, now) {
				lac.Receive(verdict, now)
			}
		}
	}
	r := lns.Result()
	e, _ := secrets.Lookup(r.User, "lns")
	addr, _ := e.Fixed()
	fmt.Println(r.OK, r.User, addr, lac.Result().OK)
	// Output: true alice 10.0.0.5 true
}
