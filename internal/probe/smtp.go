package probe

import (
	"strconv"
	"strings"
)

// smtp: greeting, EHLO, STARTTLS and EHLO again when the mode says so,
// then AUTH XOAUTH2 with the SASL string on the 334 continuation, never
// as an initial response: RFC 4954 §4 forbids one that makes the AUTH line
// longer than 512 octets (RFC 5321 §4.5.3.1.4), and a Microsoft token
// alone is 1.5-2.5 KB ("500 5.5.6 Line too long").
func (s *session) smtp() (string, error) {
	code, reply, err := s.smtpReply()
	switch {
	case err != nil && code == 0 && len(reply) > 0:
		return "", s.notServer(reply[0])
	case err != nil:
		return "", s.greetingErr(err)
	case code != 220:
		return "", s.fail(Temporary, nil, "the server turned the connection away: %s", quote(joinReply(reply), 200))
	}
	ext, err := s.ehlo()
	if err != nil {
		return "", err
	}
	if !s.tls {
		if _, ok := ext["STARTTLS"]; !ok {
			return "", s.noTLS("")
		}
		code, reply, err := s.smtpCmd("STARTTLS")
		if err != nil {
			return "", err
		}
		if code != 220 {
			return "", s.noTLS(joinReply(reply))
		}
		if err := s.startTLS(); err != nil {
			return "", err
		}
		if ext, err = s.ehlo(); err != nil {
			return "", err
		}
	}
	mechs, ok := ext["AUTH"]
	if !ok {
		return "", s.noXOAUTH2(nil).hint("an SMTP server without AUTH is a relay (port 25), not a submission server (587, 465)")
	}
	if !words(mechs)["XOAUTH2"] {
		return "", s.noXOAUTH2(append([]string{"AUTH"}, mechs...))
	}

	var final []string
	code = 0
	err = s.exchange(&xoauth2{user: s.o.User, token: s.o.Token}, false,
		func(mech, _ string) error { return s.send("AUTH " + mech) },
		func() (bool, string, error) {
			c, reply, err := s.smtpReply()
			if err != nil {
				return false, "", err
			}
			if c == 334 {
				return true, strings.TrimSpace(reply[len(reply)-1][3:]), nil
			}
			code, final = c, reply
			return false, "", nil
		})
	if err != nil {
		return "", err
	}
	if code != 235 {
		return "", s.refused(joinReply(final), "")
	}
	s.smtpCmd("QUIT") // a courtesy: the test has passed
	return "", nil
}

// ehlo sends EHLO and returns the extensions (upper case) with their
// parameters.
func (s *session) ehlo() (map[string][]string, error) {
	code, reply, err := s.smtpCmd("EHLO localhost")
	if err != nil {
		return nil, err
	}
	if code != 250 {
		return nil, s.fail(Misconfigured, nil, "the server refused EHLO: %s", quote(joinReply(reply), 200)).
			hint("a server without ESMTP (EHLO) has no AUTH: check the host and the port (587 or 465)")
	}
	ext := map[string][]string{}
	for _, line := range reply[1:] {
		f := strings.Fields(line[min(4, len(line)):])
		if len(f) == 0 {
			continue
		}
		name, arg, _ := strings.Cut(strings.ToUpper(f[0]), "=") // the old "AUTH=LOGIN PLAIN"
		params := f[1:]
		if arg != "" {
			params = append([]string{arg}, params...)
		}
		ext[name] = params
	}
	return ext, nil
}

func (s *session) smtpCmd(cmd string) (int, []string, error) {
	if err := s.send(cmd); err != nil {
		return 0, nil, err
	}
	return s.smtpReply()
}

// smtpReply reads a reply: its code and its lines. A line that is not a
// reply line, or has another code than the first (RFC 5321 §4.2.1), yields
// code 0, that line and an error.
func (s *session) smtpReply() (int, []string, error) {
	var lines []string
	for range maxKept {
		line, err := s.readLine()
		if err != nil {
			return 0, nil, err
		}
		code, err := strconv.Atoi(line[:min(3, len(line))])
		if len(line) < 3 || err != nil || code < 200 || code > 599 || len(line) > 3 && line[3] != ' ' && line[3] != '-' ||
			len(lines) > 0 && line[:3] != lines[0][:3] {
			return 0, []string{line}, s.fail(Temporary, nil, "the server's answer is not an SMTP reply: %s", quote(line, 120))
		}
		lines = append(lines, line)
		if len(line) == 3 || line[3] == ' ' {
			return code, lines, nil
		}
	}
	return 0, nil, s.fail(Temporary, nil, "a reply of more than %d lines", maxKept)
}

// joinReply shows a multi-line reply on one line.
func joinReply(lines []string) string { return strings.Join(lines, " ") }
