package probe

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/oauth2mail/oauth2mail/internal/config"
)

// refused explains the server's refusal. reply is its final reply (an
// IMAP reply without its tag); after names the command after the login
// that it answered, "" for the login itself.
func (s *session) refused(reply, after string) error {
	reply = display(reply, 300)
	var msg string
	if after == "" {
		msg = fmt.Sprintf("refused XOAUTH2 for %s: %s", s.o.User, reply)
	} else {
		msg = fmt.Sprintf("accepted XOAUTH2 for %s, then refused %s: %s", s.o.User, after, reply)
	}
	if s.challenge != "" {
		msg += fmt.Sprintf(" (after the error challenge %s)", s.challenge)
	}
	e := s.fail(Rejected, nil, "%s", msg)
	e.Reply, e.Challenge = s.red.redact(reply), s.red.redact(s.challenge)
	if temporary(s.o.Proto, reply) {
		e.Kind = Temporary
		return e.hint("the server could not check the token just now; try again later")
	}
	e.Hints = refusalHints(s.o, reply)
	return e
}

// temporary reports whether a refusal says "try later": SMTP 4xx, IMAP
// [UNAVAILABLE] (RFC 5530), POP3 [SYS/TEMP] and [IN-USE] (RFC 3206).
func temporary(proto, reply string) bool {
	switch proto {
	case config.SMTP:
		return strings.HasPrefix(reply, "4")
	case config.IMAP:
		return strings.Contains(strings.ToUpper(reply), "[UNAVAILABLE]")
	}
	r := strings.ToUpper(reply)
	return strings.Contains(r, "[SYS/TEMP]") || strings.Contains(r, "[IN-USE]")
}

var enhanced = regexp.MustCompile(`^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b`)

// appPermission is the application permission an app-only token needs.
var appPermission = map[string]string{config.IMAP: "IMAP.AccessAsApp", config.POP: "POP.AccessAsApp", config.SMTP: "SMTP.SendAsApp"}

// refusalHints maps the replies that Exchange and others give to what to do.
func refusalHints(o *Options, reply string) []string {
	mailbox, account := o.User, o.Account
	shared := !o.AppOnly && o.Email != "" && !strings.EqualFold(o.User, o.Email)
	relogin := "sign in again: oauth2mail login " + account
	if o.AppOnly {
		relogin = "check that the app has the " + appPermission[o.Proto] + " application permission, with admin consent"
	}
	var code string
	if m := enhanced.FindStringSubmatch(reply); o.Proto == config.SMTP && m != nil {
		code = m[1]
	}
	var h []string
	switch {
	case code == "5.7.139":
		h = append(h,
			"SMTP AUTH (OAuth included) is turned off for "+mailbox+" or for the whole tenant; an Exchange admin turns it on for the mailbox with: Set-CASMailbox -Identity "+mailbox+" -SmtpClientAuthenticationDisabled $false",
			"or for the tenant with: Set-TransportConfig -SmtpClientAuthenticationDisabled $false")
	case code == "5.7.3":
		h = append(h, "Exchange did not take the token for "+mailbox+": user= must be the mailbox the token was issued for; if the token is old or revoked, "+relogin)
		if shared {
			h = append(h, "to send as the shared mailbox "+mailbox+" over SMTP, authenticate as yourself (no --user) and put "+mailbox+" in From: (you need Send As rights on it)")
		}
	case strings.Contains(reply, "User is authenticated but not connected"):
		h = append(h, "Exchange took the token but cannot open "+mailbox+": user= must be the mailbox the token was issued for, or the token's user needs FullAccess on "+mailbox)
	case o.Proto == config.IMAP && strings.Contains(reply, "AUTHENTICATE failed") ||
		o.Proto == config.POP && strings.Contains(reply, "Authentication failure"):
		flag := map[string]string{config.IMAP: "-ImapEnabled", config.POP: "-PopEnabled"}[o.Proto]
		h = append(h,
			fmt.Sprintf("Exchange says this when %s is turned off for the mailbox; an Exchange admin turns it on with: Set-CASMailbox -Identity %s %s $true", protoName[o.Proto], mailbox, flag),
			"or user= ("+mailbox+") is not the mailbox the token was issued for, or the token's user lacks FullAccess on it; or the token is old or revoked: "+relogin)
	default:
		h = append(h, "the server did not take the token for "+mailbox+": it may be expired or revoked at the provider ("+relogin+"), or not valid for "+mailbox)
		if shared {
			h = append(h, mailbox+" is not "+account+"'s own mailbox ("+o.Email+"): the token's user needs access to it (FullAccess, on Exchange)")
		}
	}
	if o.AppOnly {
		h = append(h,
			"app-only access needs the app's service principal in Exchange: New-ServicePrincipal -AppId "+o.ClientID+" -ObjectId ENTERPRISE_APP_OBJECT_ID (the object ID of the enterprise application, not of the app registration)",
			"and its rights on the mailbox: Add-MailboxPermission -Identity "+mailbox+" -User SERVICE_PRINCIPAL_ID -AccessRights FullAccess")
	}
	return h
}
