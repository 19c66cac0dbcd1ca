// Package auth implements PPP authentication for L2TPv2 calls; so far
// pppd's secrets file format (chap-secrets, pap-secrets).
package auth
