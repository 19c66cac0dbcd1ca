package auth

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

// maxSecretsSize bounds a secrets file read into memory.
const maxSecretsSize = 16 << 20

// Entry is one line of a secrets file: pppd's
//
//	client server secret [address ...] [-- option ...]
//
// Client and Server are names or "*" for any. The addresses are the ones
// the client may use: none when the line has no address or its first
// address is "-", any when one is "*"; an address may be a prefix
// (10.0.0.0/24) and one starting with "!" is excluded.
type Entry struct {
	Client, Server, Secret string
	Addrs                  []netip.Prefix // allowed
	Denied                 []netip.Prefix // "!" entries
	AnyAddr                bool           // "*"
	Options                []string       // the words after "--"
	Line                   int            // where the entry starts, from 1
}

// Fixed returns the address of an entry that names exactly one host
// address (and no "*"): the address the user always gets.
func (e *Entry) Fixed() (netip.Addr, bool) {
	if e.AnyAddr || len(e.Addrs) != 1 || !e.Addrs[0].IsSingleIP() {
		return netip.Addr{}, false
	}
	return e.Addrs[0].Addr(), true
}

// Allowed reports whether the client may use address a.
func (e *Entry) Allowed(a netip.Addr) bool {
	for _, p := range e.Denied {
		if p.Contains(a) {
			return false
		}
	}
	if e.AnyAddr {
		return true
	}
	for _, p := range e.Addrs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Secrets is a parsed secrets file (pppd's chap-secrets or pap-secrets).
type Secrets struct {
	entries []Entry
}

// LoadSecrets reads and parses the secrets file at path.
func LoadSecrets(path string) (*Secrets, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseSecrets(f, path)
}

// ParseSecrets parses a secrets file in pppd's format; name (the file's
// path) prefixes the errors, which say "name:line: what".
//
// The words are separated by blanks; a word starting with "#" starts a
// comment to the end of the line; a line ending in a backslash continues
// on the next one; double or single quotes keep blanks and "#" in a word;
// a backslash escapes the next character: \n \t \r \s (space) \a \b \f
// \v, \ooo in octal, \xhh in hex, \^c a control character, anything else
// itself. Each line with words is one entry. A secret starting with "@"
// (pppd reads it from a file) is taken literally.
func ParseSecrets(r io.Reader, name string) (*Secrets, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSecretsSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxSecretsSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxSecretsSize)
	}
	s := &Secrets{}
	lx := lexer{src: string(data), line: 1}
	var words []string
	line := 0
	flush := func() error {
		if len(words) == 0 {
			return nil
		}
		e, err := parseEntry(words)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, line, err)
		}
		e.Line = line
		s.entries = append(s.entries, e)
		words = words[:0]
		return nil
	}
	for {
		w, wline, first, err := lx.next()
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, lx.line, err)
		}
		if w == nil || first {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		if w == nil {
			return s, nil
		}
		if len(words) == 0 {
			line = wline
		}
		words = append(words, *w)
	}
}

// parseEntry makes an Entry of a line's words.
func parseEntry(words []string) (Entry, error) {
	if len(words) < 3 {
		return Entry{}, errors.New("want client, server and secret")
	}
	e := Entry{Client: words[0], Server: words[1], Secret: words[2]}
	for i, w := range words[3:] {
		switch {
		case w == "--":
			e.Options = append([]string(nil), words[3+i+1:]...)
			return e, nil
		case w == "-" && i == 0:
			// no address allowed: the list stays empty
		case w == "*":
			e.AnyAddr = true
		default:
			deny := strings.HasPrefix(w, "!")
			p, err := parseAddr(strings.TrimPrefix(w, "!"))
			if err != nil {
				return Entry{}, fmt.Errorf("address %q: %w", w, err)
			}
			if deny {
				e.Denied = append(e.Denied, p)
			} else {
				e.Addrs = append(e.Addrs, p)
			}
		}
	}
	return e, nil
}

// parseAddr reads an address or a prefix.
func parseAddr(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not an IP address or prefix")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not an IP address or prefix")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Entries returns the entries in file order.
func (s *Secrets) Entries() []Entry { return s.entries }

// Lookup returns the entry for client talking to server with pppd's
// precedence: a field equal to the name beats "*", a matching client
// counts more than a matching server, and among equals the first line
// wins.
func (s *Secrets) Lookup(client, server string) (*Entry, bool) {
	best, bestScore := -1, -1
	for i := range s.entries {
		e := &s.entries[i]
		score := 0
		switch e.Client {
		case "*":
		case client:
			score += 2
		default:
			continue
		}
		switch e.Server {
		case "*":
		case server:
			score++
		default:
			continue
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return nil, false
	}
	return &s.entries[best], true
}

// Secret returns the secret of client talking to server:
// AuthenticatorConfig.Secret.
func (s *Secrets) Secret(client, server string) (string, bool) {
	e, ok := s.Lookup(client, server)
	if !ok {
		return "", false
	}
	return e.Secret, true
}

// VerifyPassword reports whether password is the secret of client talking
// to server: AuthenticatorConfig.Verify.
func (s *Secrets) VerifyPassword(client, server, password string) bool {
	e, ok := s.Lookup(client, server)
	return ok && subtle.ConstantTimeCompare([]byte(e.Secret), []byte(password)) == 1
}

// lexer splits a secrets file into words.
type lexer struct {
	src  string
	pos  int
	line int
}

// next returns the next word, the line it starts on and whether it is the
// first word on its line; nil at the end.
func (l *lexer) next() (word *string, line int, first bool, err error) {
	first = l.pos == 0
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\n':
			l.line++
			l.pos++
			first = true
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			l.pos++
			continue
		case c == '\\' && l.pos+1 < len(l.src) && l.src[l.pos+1] == '\n':
			l.line++
			l.pos += 2
			continue
		case c == '#':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
			continue
		}
		line = l.line
		w, err := l.word()
		if err != nil {
			return nil, 0, false, err
		}
		return &w, line, first, nil
	}
	return nil, 0, false, nil
}

// word reads one word starting at l.pos.
func (l *lexer) word() (string, error) {
	var b strings.Builder
	var quote byte
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case quote == 0 && (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' || c == '\n'):
			return b.String(), nil
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
			l.pos++
		case c == quote:
			quote = 0
			l.pos++
		case c == '\\':
			l.pos++
			if err := l.escape(&b); err != nil {
				return "", err
			}
		default:
			if c == '\n' {
				l.line++
			}
			b.WriteByte(c)
			l.pos++
		}
	}
	if quote != 0 {
		return "", fmt.Errorf("unterminated %c quote", quote)
	}
	return b.String(), nil
}

// escape reads the escape after a backslash (l.pos is past the
// backslash) into b.
func (l *lexer) escape(b *strings.Builder) error {
	if l.pos >= len(l.src) {
		return errors.New("backslash at end of file")
	}
	c := l.src[l.pos]
	l.pos++
	switch c {
	case '\n': // continuation inside a word
		l.line++
	case 'a':
		b.WriteByte('\a')
	case 'b':
		b.WriteByte('\b')
	case 'f':
		b.WriteByte('\f')
	case 'n':
		b.WriteByte('\n')
	case 'r':
		b.WriteByte('\r')
	case 's':
		b.WriteByte(' ')
	case 't':
		b.WriteByte('\t')
	case 'v':
		b.WriteByte('\v')
	case 'x':
		b.WriteByte(byte(l.digits(16, 2, 0)))
	case '^':
		if l.pos >= len(l.src) {
			return errors.New("\\^ at end of file")
		}
		b.WriteByte(l.src[l.pos] & 0x1f)
		l.pos++
	default:
		if c >= '0' && c <= '7' {
			l.pos--
			b.WriteByte(byte(l.digits(8, 3, 0)))
			return nil
		}
		b.WriteByte(c)
	}
	return nil
}

// digits reads up to n digits of base into v.
func (l *lexer) digits(base, n, v int) int {
	for ; n > 0 && l.pos < len(l.src); n-- {
		d := digitValue(l.src[l.pos])
		if d < 0 || d >= base {
			break
		}
		v = v*base + d
		l.pos++
	}
	return v
}

func digitValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
