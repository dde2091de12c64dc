package probe

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// maxLiteral bounds an IMAP literal in a reply (a mailbox name in LIST).
const maxLiteral = 1 << 20

// imap: greeting, STARTTLS when the mode says so, CAPABILITY,
// AUTHENTICATE XOAUTH2 (inline with SASL-IR), then LIST: Exchange may take
// a token for the wrong mailbox at AUTHENTICATE and fail only there.
func (s *session) imap() (string, error) {
	greeting, err := s.greeting()
	if err != nil {
		return "", err
	}
	switch word := strings.ToUpper(field(greeting, 1)); {
	case field(greeting, 0) != "*":
		return "", s.notServer(greeting)
	case word == "BYE":
		return "", s.fail(Temporary, nil, "the server turned the connection away: %s", quote(greeting, 200))
	case word == "PREAUTH":
		return "", s.fail(Misconfigured, nil, "the server logged the connection in without credentials (PREAUTH): nothing to test")
	case word != "OK":
		return "", s.notServer(greeting)
	}
	caps := respCaps(greeting)
	if !s.tls {
		if caps == nil {
			if caps, err = s.imapCaps(); err != nil {
				return "", err
			}
		}
		if !caps["STARTTLS"] {
			return "", s.noTLS("")
		}
		ok, reply, err := s.imapCmd("STARTTLS", nil)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", s.noTLS(reply)
		}
		if err := s.startTLS(); err != nil {
			return "", err
		}
		caps = nil // RFC 3501 §6.2.1: forget what was said before TLS
	}
	if caps == nil {
		if caps, err = s.imapCaps(); err != nil {
			return "", err
		}
	}
	if !caps["AUTH=XOAUTH2"] {
		var offers []string
		for c := range caps {
			if strings.HasPrefix(c, "AUTH=") || c == "LOGINDISABLED" {
				offers = append(offers, c)
			}
		}
		slices.Sort(offers)
		return "", s.noXOAUTH2(offers)
	}

	tag, final := s.tag(), ""
	err = s.exchange(&xoauth2{user: s.o.User, token: s.o.Token}, caps["SASL-IR"],
		func(mech, ir string) error {
			return s.send(strings.TrimSuffix(tag+" AUTHENTICATE "+mech+" "+ir, " "))
		},
		func() (bool, string, error) {
			for range maxLines {
				line, err := s.readLine()
				if err != nil {
					return false, "", err
				}
				if payload, ok := continuation(line); ok {
					return true, payload, nil
				}
				if field(line, 0) == tag {
					final = line
					return false, "", nil
				}
			}
			return false, "", s.fail(Temporary, nil, "more than %d lines without an answer to AUTHENTICATE", maxLines)
		})
	if err != nil {
		return "", err
	}
	if ok, reply := imapStatus(final); !ok {
		return "", s.refused(reply, "")
	}

	n := 0
	ok, reply, err := s.imapCmd(`LIST "" "*"`, func(line string) {
		if strings.EqualFold(field(line, 1), "LIST") {
			n++
		}
	})
	if err != nil {
		return "", err
	}
	if !ok {
		return "", s.refused(reply, "LIST")
	}
	s.imapCmd("LOGOUT", nil) // a courtesy: the test has passed
	return fmt.Sprintf("LIST ok (%s)", plural(n, "mailbox", "mailboxes")), nil
}

func (s *session) tag() string {
	s.tags++
	return "A" + strconv.Itoa(s.tags)
}

// imapCmd sends a command and reads up to its tagged reply; untagged gets
// each untagged line (without literals). ok is an OK status; reply is the
// tagged reply without its tag.
func (s *session) imapCmd(cmd string, untagged func(string)) (ok bool, reply string, err error) {
	tag := s.tag()
	if err := s.send(tag + " " + cmd); err != nil {
		return false, "", err
	}
	for range maxLines {
		line, err := s.readLine()
		if err != nil {
			return false, "", err
		}
		if _, cont := continuation(line); cont {
			return false, "", s.fail(Temporary, nil, "the server asked for more of %s, which is complete: %s", field(cmd, 0), quote(line, 120))
		}
		if field(line, 0) == tag {
			ok, reply := imapStatus(line)
			return ok, reply, nil
		}
		if untagged != nil && field(line, 0) == "*" {
			untagged(line)
		}
		// a literal: skip it and the rest of its line
		for n, isLit := literal(line); isLit; n, isLit = literal(line) {
			if n > maxLiteral {
				return false, "", s.fail(Temporary, nil, "the server sent a literal of %d bytes", n)
			}
			if err := s.readFull(n); err != nil {
				return false, "", err
			}
			if line, err = s.readLine(); err != nil {
				return false, "", err
			}
		}
	}
	return false, "", s.fail(Temporary, nil, "more than %d lines in the answer to %s", maxLines, field(cmd, 0))
}

// imapCaps asks for the capabilities.
func (s *session) imapCaps() (map[string]bool, error) {
	var caps map[string]bool
	ok, reply, err := s.imapCmd("CAPABILITY", func(line string) {
		if strings.EqualFold(field(line, 1), "CAPABILITY") {
			caps = words(strings.Fields(line)[2:]) // as field splits: "*\tCAPABILITY" has no second space
		}
	})
	if err != nil {
		return nil, err
	}
	if !ok || caps == nil {
		return nil, s.fail(Temporary, nil, "CAPABILITY failed: %s", quote(reply, 200))
	}
	return caps, nil
}

// respCaps reads the capabilities of a "[CAPABILITY ...]" response code.
func respCaps(line string) map[string]bool {
	_, rest, ok := strings.Cut(line, "[")
	rest, _, ok2 := strings.Cut(rest, "]")
	if !ok || !ok2 {
		return nil
	}
	if f := strings.Fields(rest); len(f) > 0 && strings.EqualFold(f[0], "CAPABILITY") {
		return words(f[1:])
	}
	return nil
}

// imapStatus splits a tagged reply: ok is an OK status; reply is the line
// without its tag.
func imapStatus(line string) (bool, string) {
	_, reply, _ := strings.Cut(line, " ")
	return strings.EqualFold(field(line, 1), "OK"), reply
}

// literal reports whether line ends with an IMAP literal {n} or {n+}.
func literal(line string) (int, bool) {
	if !strings.HasSuffix(line, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(line[i+1:len(line)-1], "+"))
	return n, err == nil && n >= 0
}

// continuation reports whether line is a SASL continuation ("+" or
// "+ payload"), with its payload.
func continuation(line string) (string, bool) {
	if line == "+" {
		return "", true
	}
	payload, ok := strings.CutPrefix(line, "+ ")
	return strings.TrimSpace(payload), ok
}

// field returns the i-th space-separated word of line, or "".
func field(line string, i int) string {
	f := strings.Fields(line)
	if i < len(f) {
		return f[i]
	}
	return ""
}

func words(list []string) map[string]bool {
	m := map[string]bool{}
	for _, l := range list {
		for _, w := range strings.Fields(l) {
			m[strings.ToUpper(w)] = true
		}
	}
	return m
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
