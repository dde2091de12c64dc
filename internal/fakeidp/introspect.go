package fakeidp

import (
	"net/http"
	"strings"
	"time"
)

type introspection struct {
	Active    bool   `json:"active"`
	Sub       string `json:"sub,omitempty"`
	Username  string `json:"username,omitempty"`
	Email     string `json:"email,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Scope     string `json:"scope,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Tid       string `json:"tid,omitempty"`
}

// handleIntrospect is an RFC 7662 endpoint for Dovecot's oauth2 passdb. It
// takes the token from a POST form ("token", introspection_mode=post),
// from the query ("token", introspection_mode=get) or from an
// "Authorization: Bearer" header (introspection_mode=auth). HTTP Basic
// credentials are accepted and ignored. Only access tokens can be active.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	tok := ""
	if r.Method == http.MethodPost {
		tok = postForm(r).Get("token")
	}
	if tok == "" {
		tok = r.URL.Query().Get("token")
	}
	if tok == "" {
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
			tok = strings.TrimSpace(h[7:])
		}
	}

	now := time.Now()
	s.mu.Lock()
	s.stats.Introspections++
	resp := introspection{}
	if at, ok := s.activeAccessToken(tok, now); ok {
		g := at.g
		resp = introspection{
			Active:    true,
			Sub:       g.login,
			Username:  g.login,
			Email:     g.login,
			ClientID:  g.clientID,
			Scope:     at.scope,
			TokenType: "Bearer",
			Exp:       at.expires.Unix(),
			Iat:       at.issued.Unix(),
			Tid:       tenantID(g.tenant, g.login),
		}
	}
	s.mu.Unlock()
	s.debugf("  -> active=%v", resp.Active)
	writeJSON(w, http.StatusOK, resp)
}

// handleDiscovery is /{tenant}/v2.0/.well-known/openid-configuration,
// trimmed to the endpoints the fake has.
func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	base := s.baseURL(r) + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                "https://login.microsoftonline.com/" + tenantID(tenant, "") + "/v2.0",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"introspection_endpoint":                s.baseURL(r) + "/introspect",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"grant_types_supported":                 []string{grantAuthCode, grantRefresh, grantDevice},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"tenant_region_scope":                   "EU",
	})
}
