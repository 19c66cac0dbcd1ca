package config

import (
	"strings"

	"github.com/BurntSushi/toml"
)

// lines maps each key and table of a TOML text, as toml.Key.String spells
// it, to the line it is on (from 1). The TOML library keeps key positions
// to itself, so this reads them again: it knows table headers
// ([a.b."c"]) and key = value lines, which is how go-l2tp's files are
// written; keys inside inline tables are not found, and lineOf falls back
// to the line of their table.
type lines map[string]int

// keyLines scans text for the positions of its tables and keys.
func keyLines(text string) lines {
	pos := lines{}
	var table []string
	inString := "" // the delimiter of a multi-line string being skipped
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if inString != "" {
			if strings.Count(line, inString)%2 == 1 {
				inString = ""
			}
			continue
		}
		s := strings.TrimSpace(line)
		switch {
		case s == "" || s[0] == '#':
			continue
		case strings.HasPrefix(s, "[["):
			if k, rest, ok := parseKey(s[2:]); ok && strings.HasPrefix(rest, "]]") {
				table = k
				pos.note(k, n)
			}
			continue
		case s[0] == '[':
			if k, rest, ok := parseKey(s[1:]); ok && strings.HasPrefix(rest, "]") {
				table = k
				pos.note(k, n)
			}
			continue
		}
		k, rest, ok := parseKey(s)
		if !ok || !strings.HasPrefix(rest, "=") {
			continue
		}
		pos.note(append(append([]string(nil), table...), k...), n)
		value := rest[1:]
		for _, q := range []string{`"""`, `'''`} {
			if strings.Count(value, q)%2 == 1 {
				inString = q
			}
		}
	}
	return pos
}

// note records the first line a key is on.
func (l lines) note(key []string, n int) {
	k := toml.Key(key).String()
	if _, ok := l[k]; !ok {
		l[k] = n
	}
}

// lineOf is the line of key, else of the nearest table holding it, else 0.
func (l lines) lineOf(key ...string) int {
	for i := len(key); i > 0; i-- {
		if n, ok := l[toml.Key(key[:i]).String()]; ok {
			return n
		}
	}
	return 0
}

// sessionLine is the line of a session's key, of its table if the key is
// absent. Sequencing has two words, ours (seq) and go-l2tp's (seqnum):
// an error about seq points at whichever the file has.
func (l lines) sessionLine(tunnel, session, key string) int {
	if key == "seq" {
		for _, k := range []string{"seq", "seqnum"} {
			if n, ok := l[toml.Key{"tunnel", tunnel, "session", session, k}.String()]; ok {
				return n
			}
		}
	}
	return l.lineOf("tunnel", tunnel, "session", session, key)
}

// parseKey reads a dotted TOML key (bare or quoted parts) from the start
// of s and returns it with the rest of s, spaces trimmed.
func parseKey(s string) (key []string, rest string, ok bool) {
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return nil, "", false
		}
		var part string
		switch s[0] {
		case '"', '\'':
			end := closingQuote(s)
			if end < 0 {
				return nil, "", false
			}
			part = s[1:end]
			if s[0] == '"' {
				part = unescape(part)
			}
			s = s[end+1:]
		default:
			end := 0
			for end < len(s) && isBare(s[end]) {
				end++
			}
			if end == 0 {
				return nil, "", false
			}
			part, s = s[:end], s[end:]
		}
		key = append(key, part)
		s = strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(s, ".") {
			return key, s, true
		}
		s = s[1:]
	}
}

// closingQuote is the index of the quote ending the string s starts with,
// or -1.
func closingQuote(s string) int {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch {
		case q == '"' && s[i] == '\\':
			i++
		case s[i] == q:
			return i
		}
	}
	return -1
}

// unescape undoes the common escapes of a basic string key; others stay
// as written (the position is then not found, and lineOf falls back).
func unescape(s string) string {
	return strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(s)
}

func isBare(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}
