package probe

import (
	"encoding/base64"
	"errors"

	gosasl "github.com/emersion/go-sasl"

	"github.com/oauth2mail/oauth2mail/internal/sasl"
)

// xoauth2 is the XOAUTH2 mechanism as a go-sasl client. Its initial
// response is the SASL string; a challenge after it is the server's error
// (JSON at Google and Dovecot), which the mechanism answers with an empty
// response so that the server sends its final reply.
type xoauth2 struct {
	user, token string
	answered    bool
}

var _ gosasl.Client = (*xoauth2)(nil)

func (x *xoauth2) Start() (string, []byte, error) {
	return "XOAUTH2", sasl.XOAUTH2Raw(x.user, x.token), nil
}

func (x *xoauth2) Next(challenge []byte) ([]byte, error) {
	if x.answered {
		return nil, errors.New("a second challenge after the error challenge")
	}
	x.answered = true
	return []byte{}, nil
}

// maxRounds bounds the challenges of one exchange.
const maxRounds = 4

// exchange carries a SASL exchange over one protocol. start sends the
// command with the initial response inline (ir != "") or without it; next
// reads the next reply and says whether it is a continuation, with its
// base64 payload. exchange returns when next reads a final reply, which the
// caller keeps. inline says whether the initial response may go on the
// command line (IMAP with SASL-IR; never POP3, whose command line is 255
// octets, nor SMTP, 512: RFC 5034 §4, RFC 4954 §4).
func (s *session) exchange(c gosasl.Client, inline bool, start func(mech, ir string) error, next func() (bool, string, error)) error {
	mech, ir, err := c.Start()
	if err != nil {
		return err
	}
	pending, arg := ir, ""
	if inline && len(ir) > 0 {
		pending, arg = nil, base64.StdEncoding.EncodeToString(ir)
	}
	if err := start(mech, arg); err != nil {
		return err
	}
	for round := 0; ; round++ {
		cont, payload, err := next()
		if err != nil || !cont {
			return err
		}
		if round == maxRounds {
			return s.fail(Temporary, nil, "the server sent more than %d SASL challenges", maxRounds)
		}
		if pending != nil { // the go-ahead for the initial response
			if err := s.send(base64.StdEncoding.EncodeToString(pending)); err != nil {
				return err
			}
			pending = nil
			continue
		}
		line := "*" // cancels the exchange
		if challenge, err := base64.StdEncoding.DecodeString(payload); err != nil {
			s.t.note("the challenge is not base64; cancelling")
		} else {
			s.challenge = display(string(challenge), 300)
			s.t.note("the server's challenge, decoded: %s", s.challenge)
			if resp, err := c.Next(challenge); err != nil {
				s.t.note("%v; cancelling", err)
			} else {
				line = base64.StdEncoding.EncodeToString(resp) // an empty response is an empty line
			}
		}
		if err := s.send(line); err != nil {
			return err
		}
	}
}
