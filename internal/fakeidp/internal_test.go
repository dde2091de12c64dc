package fakeidp

import (
	"encoding/json"
	"log"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oauth2mail/oauth2mail/internal/testutil"
)

func TestGrantScopes(t *testing.T) {
	const (
		imap  = "https://outlook.office.com/IMAP.AccessAsUser.All"
		smtp  = "https://outlook.office.com/SMTP.Send"
		graph = "https://graph.microsoft.com/Mail.Read"
	)
	consented := []string{imap, smtp, graph, "offline_access", "openid", "profile"}
	tests := []struct {
		name        string
		requested   string
		wantGranted string
		wantOpenID  bool
		wantMissing string
	}{
		{"none: first resource of the consent", "", imap + " " + smtp, true, ""},
		{"subset", smtp, smtp, false, ""},
		{"case-insensitive", strings.ToLower(smtp), strings.ToLower(smtp), false, ""},
		{"graph only", graph + " openid", graph, true, ""},
		{"two resources: first wins", graph + " " + imap, graph, false, ""},
		{".default", "https://outlook.office.com/.default offline_access", imap + " " + smtp, false, ""},
		{"not consented", imap + " https://outlook.office.com/EWS.AccessAsUser.All", imap, false, "https://outlook.office.com/EWS.AccessAsUser.All"},
		{".default not consented", "https://management.azure.com/.default", "", false, "https://management.azure.com/.default"},
		{"bare graph scope", "User.Read", "", false, "User.Read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			granted, openid, missing := grantScopes(splitScopes(tt.requested), consented)
			if got := strings.Join(granted, " "); got != tt.wantGranted {
				t.Errorf("granted: got %q, want %q", got, tt.wantGranted)
			}
			if openid != tt.wantOpenID {
				t.Errorf("openid: got %v, want %v", openid, tt.wantOpenID)
			}
			if got := strings.Join(missing, " "); got != tt.wantMissing {
				t.Errorf("missing: got %q, want %q", got, tt.wantMissing)
			}
		})
	}
}

func TestCheckRedirectURI(t *testing.T) {
	tests := []struct {
		uri  string
		want bool
	}{
		{"http://localhost", true},
		{"http://localhost:53682", true},
		{"http://localhost:53682/", true},
		{"http://127.0.0.1:1/callback?x=1", true},
		{"https://localhost:8443/a/b", true},
		{"http://LOCALHOST:1/", false}, // redirect URIs are case-sensitive
		{"http://[::1]:1/", false},
		{"http://127.0.0.2:1/", false},
		{"http://user@localhost:1/", false},
		{"http://localhost:x/", false},
		{"http://localhost:1/#frag", false},
		{"urn:ietf:wg:oauth:2.0:oob", false},
		{"http://localhost:1/" + strings.Repeat("a", 256), false},
	}
	for _, tt := range tests {
		if _, got := checkRedirectURI(tt.uri); got != tt.want {
			t.Errorf("checkRedirectURI(%q): got %v, want %v", tt.uri, got, tt.want)
		}
	}
}

func TestUserCode(t *testing.T) {
	for range 100 {
		c := newUserCode()
		if len(c) != 9 || strings.Trim(c, userCodeAlphabet) != "" {
			t.Fatalf("newUserCode: got %q, want 9 characters of %s", c, userCodeAlphabet)
		}
	}
	if got := normUserCode("abcd-1234 x"); got != "ABCD1234X" {
		t.Errorf("normUserCode: got %q", got)
	}
}

func TestDebugEnv(t *testing.T) {
	t.Setenv("FAKEIDP_DEBUG", "1")
	if s := NewHandler(Options{}); s.debug == nil {
		t.Errorf("FAKEIDP_DEBUG=1: debug log is off")
	}
	t.Setenv("FAKEIDP_DEBUG", "")
	if s := NewHandler(Options{}); s.debug != nil {
		t.Errorf("FAKEIDP_DEBUG unset: debug log is on")
	}
}

// TestDebugLogHasNoSecrets runs every flow with the debug log on and
// checks that no code or token reaches it.
func TestDebugLogHasNoSecrets(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	var logbuf testutil.SyncBuffer
	s.debug = log.New(&logbuf, "fakeidp: ", 0)
	base := s.URL + "/organizations/oauth2/v2.0"
	post := func(u string, form url.Values) map[string]any {
		t.Helper()
		resp, err := http.PostForm(u, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		json.NewDecoder(resp.Body).Decode(&v)
		return v
	}
	var secrets []string
	addSecrets := func(v map[string]any, keys ...string) {
		for _, k := range keys {
			if s, _ := v[k].(string); s != "" {
				secrets = append(secrets, s)
			}
		}
	}

	verifier := strings.Repeat("v", 43)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(base + "/authorize?" + url.Values{
		"client_id": {"c"}, "response_type": {"code"}, "redirect_uri": {"http://localhost:1"}, "state": {"st"},
		"scope": {"offline_access openid https://outlook.office.com/SMTP.Send"}, "code_challenge": {s256(verifier)}, "code_challenge_method": {"S256"},
	}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	secrets = append(secrets, code)
	tok := post(base+"/token", url.Values{"client_id": {"c"}, "grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://localhost:1"}, "code_verifier": {verifier}})
	addSecrets(tok, "access_token", "refresh_token", "id_token")
	ref := post(base+"/token", url.Values{"client_id": {"c"}, "grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	addSecrets(ref, "access_token", "refresh_token", "id_token")
	post(s.URL+"/introspect", url.Values{"token": {ref["access_token"].(string)}})
	http.Get(s.URL + "/introspect?token=" + url.QueryEscape(ref["access_token"].(string)))
	dc := post(base+"/devicecode", url.Values{"client_id": {"c"}, "scope": {"offline_access"}})
	addSecrets(dc, "device_code")
	dt := post(base+"/token", url.Values{"client_id": {"c"}, "grant_type": {grantDevice}, "device_code": {dc["device_code"].(string)}})
	addSecrets(dt, "access_token", "refresh_token")

	if len(secrets) != 10 {
		t.Fatalf("collected %d secrets, want 10 (a flow failed)", len(secrets))
	}
	out := logbuf.String()
	for _, want := range []string{"GET /organizations/oauth2/v2.0/authorize", `grant_type="refresh_token"`, "POST /introspect", "-> active=true"} {
		if !strings.Contains(out, want) {
			t.Errorf("debug log lacks %q:\n%s", want, out)
		}
	}
	for _, sec := range secrets {
		if strings.Contains(out, sec[:20]) {
			t.Errorf("debug log contains a secret starting %.8q", sec)
		}
	}
}
