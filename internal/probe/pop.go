package probe

import (
	"fmt"
	"strings"
)

// pop: greeting, CAPA, STLS when the mode says so, AUTH XOAUTH2 with the
// SASL string on the continuation line (RFC 5034: the command line holds
// 255 octets), then STAT.
func (s *session) pop() (string, error) {
	greeting, err := s.greeting()
	if err != nil {
		return "", err
	}
	switch {
	case hasPrefixFold(greeting, "-ERR"):
		return "", s.fail(Temporary, nil, "the server turned the connection away: %s", quote(greeting, 200))
	case !hasPrefixFold(greeting, "+OK"):
		return "", s.notServer(greeting)
	}
	caps, err := s.popCapa()
	if err != nil {
		return "", err
	}
	if !s.tls {
		if caps != nil && !caps.has("STLS") {
			return "", s.noTLS("")
		}
		reply, err := s.popCmd("STLS")
		if err != nil {
			return "", err
		}
		if !hasPrefixFold(reply, "+OK") {
			return "", s.noTLS(reply)
		}
		if err := s.startTLS(); err != nil {
			return "", err
		}
		if caps, err = s.popCapa(); err != nil {
			return "", err
		}
	}
	// RFC 5034 §3: a server with AUTH lists its mechanisms under SASL;
	// a CAPA without that line may still take AUTH, so it is tried.
	if mechs, ok := caps["SASL"]; ok && !words(mechs)["XOAUTH2"] {
		return "", s.noXOAUTH2(append([]string{"SASL"}, mechs...))
	}

	final := ""
	err = s.exchange(&xoauth2{user: s.o.User, token: s.o.Token}, false,
		func(mech, _ string) error { return s.send("AUTH " + mech) },
		func() (bool, string, error) {
			line, err := s.readLine()
			if err != nil {
				return false, "", err
			}
			if payload, ok := continuation(line); ok {
				return true, payload, nil
			}
			final = line
			return false, "", nil
		})
	if err != nil {
		return "", err
	}
	if !hasPrefixFold(final, "+OK") {
		return "", s.refused(final, "")
	}

	reply, err := s.popCmd("STAT")
	if err != nil {
		return "", err
	}
	if !hasPrefixFold(reply, "+OK") {
		return "", s.refused(reply, "STAT")
	}
	s.popCmd("QUIT") // a courtesy: the test has passed
	var n, size int
	if _, err := fmt.Sscanf(reply[3:], "%d %d", &n, &size); err != nil {
		return "STAT ok", nil
	}
	return fmt.Sprintf("STAT ok (%s, %d octets)", plural(n, "message", "messages"), size), nil
}

func (s *session) popCmd(cmd string) (string, error) {
	if err := s.send(cmd); err != nil {
		return "", err
	}
	return s.readLine()
}

// capa is what CAPA lists: each capability's name (upper case) and its
// arguments.
type capa map[string][]string

func (c capa) has(name string) bool { _, ok := c[name]; return ok }

// popCapa asks for the capabilities; nil when the server has no CAPA.
func (s *session) popCapa() (capa, error) {
	reply, err := s.popCmd("CAPA")
	if err != nil || !hasPrefixFold(reply, "+OK") {
		return nil, err
	}
	caps := capa{}
	for range maxKept {
		line, err := s.readLine()
		if err != nil {
			return nil, err
		}
		if line == "." {
			return caps, nil
		}
		f := strings.Fields(strings.TrimPrefix(line, ".")) // dot-stuffing
		if len(f) > 0 {
			caps[strings.ToUpper(f[0])] = f[1:]
		}
	}
	return nil, s.fail(Temporary, nil, "more than %d lines in the answer to CAPA", maxKept)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
