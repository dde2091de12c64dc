package fakeidp

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"
)

// App is a confidential app registration (a daemon or service): it proves
// itself with a client secret or a certificate and gets app-only tokens
// with the client-credentials grant, as Entra ID gives them for
// IMAP.AccessAsApp, POP.AccessAsApp and SMTP.SendAsApp.
type App struct {
	ClientID string
	Secret   string            // "" when the app has no secret
	Cert     *x509.Certificate // nil when the app has no certificate (RSA key)
}

// AddApp registers a confidential app; its client ID is then accepted
// besides Options.ClientID, for the client-credentials grant only.
func (s *Server) AddApp(a App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps == nil {
		s.apps = make(map[string]App)
	}
	s.apps[a.ClientID] = a
}

func (s *Server) app(clientID string) (App, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[clientID]
	return a, ok
}

// StartTLS serves the same fake over HTTPS too (MSAL refuses an authority
// that is not https) and returns its base URL and the certificate a client
// must trust. Close stops it.
func (s *Server) StartTLS() (base string, cert *x509.Certificate) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tls == nil {
		s.tls = httptest.NewTLSServer(s)
	}
	return s.tls.URL, s.tls.Certificate()
}

// TLSClient returns an HTTP client that trusts StartTLS's certificate.
func (s *Server) TLSClient() *http.Client {
	s.StartTLS()
	return s.tls.Client()
}

// NewAppCert makes a self-signed RSA certificate for an App and returns it
// with the PEM file a user points certificate = at: the certificate, then
// its PKCS #8 private key.
func NewAppCert() (*x509.Certificate, []byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "oauth2mail test app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return cert, append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})...), nil
}

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// redeemClientCredentials is the client-credentials grant of a confidential
// app: the secret or the certificate-signed assertion is checked as Entra
// ID checks it, and an access token without a refresh token is issued.
func (s *Server) redeemClientCredentials(r *http.Request, form url.Values, tenant string, app App, now time.Time) (tokenResponse, *idpError) {
	if gt := form.Get("grant_type"); gt != grantClientCreds {
		return tokenResponse{}, &idpError{status: 400, err: "unauthorized_client", code: 700016,
			msg: fmt.Sprintf("The app '%s' is a confidential client: the fake accepts only the client_credentials grant for it, not '%s'.", app.ClientID, gt)}
	}
	// MSAL adds openid, profile and offline_access to every request;
	// Entra ID ignores them here.
	var resource []string
	for _, sc := range strings.Fields(form.Get("scope")) {
		switch sc {
		case "openid", "profile", "offline_access":
		default:
			resource = append(resource, sc)
		}
	}
	scope := strings.Join(resource, " ")
	if len(resource) != 1 || !strings.HasSuffix(scope, "/.default") {
		return tokenResponse{}, &idpError{status: 400, err: "invalid_scope", code: 1002012,
			msg: fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)}
	}
	switch {
	case form.Get("client_secret") != "":
		if app.Secret == "" || subtle.ConstantTimeCompare([]byte(form.Get("client_secret")), []byte(app.Secret)) != 1 {
			return tokenResponse{}, &idpError{status: 401, err: "invalid_client", code: 7000215,
				msg: fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", app.ClientID)}
		}
	case form.Get("client_assertion") != "":
		aud := s.baseURL(r) + "/" + tenant + "/oauth2/v2.0/token"
		if e := checkAssertion(form, app, aud, now); e != nil {
			return tokenResponse{}, e
		}
	default:
		return tokenResponse{}, &idpError{status: 401, err: "invalid_client", code: 7000218,
			msg: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.ClientCredentialsOK++
	g := s.newGrant("app:"+app.ClientID, app.ClientID, tenant, []string{scope}, now)
	return s.issueAccess(g, []string{scope}, now), nil
}

// checkAssertion verifies a client assertion (RFC 7523) signed with the
// app's certificate key: PS256 with x5t#S256 as MSAL sends it, or RS256
// with x5t (SHA-1).
func checkAssertion(form url.Values, app App, aud string, now time.Time) *idpError {
	bad := func(code int, msg string) *idpError {
		return &idpError{status: 401, err: "invalid_client", code: code, msg: msg}
	}
	if form.Get("client_assertion_type") != assertionType {
		return &idpError{status: 400, err: "invalid_request", code: 50027, msg: "Invalid JWT token: client_assertion_type is not " + assertionType + "."}
	}
	parts := strings.Split(form.Get("client_assertion"), ".")
	if len(parts) != 3 {
		return bad(50027, "Invalid JWT token: the token is not in JWS compact form.")
	}
	var hdr map[string]any
	var claims struct {
		Aud, Iss, Sub string
		Exp, Nbf      int64
	}
	if decodeSegment(parts[0], &hdr) != nil || decodeSegment(parts[1], &claims) != nil {
		return bad(50027, "Invalid JWT token: cannot decode it.")
	}
	if app.Cert == nil {
		return bad(700027, "Client assertion failed signature validation: the app has no certificate.")
	}
	pub, ok := app.Cert.PublicKey.(*rsa.PublicKey)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if !ok || err != nil {
		return bad(700027, "Client assertion failed signature validation.")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	var thumb, key string
	switch hdr["alg"] {
	case "PS256":
		err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		t := sha256.Sum256(app.Cert.Raw)
		thumb, key = base64.StdEncoding.EncodeToString(t[:]), "x5t#S256"
	case "RS256":
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
		key = "x5t"
	default:
		return bad(700027, fmt.Sprintf("Client assertion failed signature validation: alg %v is not supported.", hdr["alg"]))
	}
	if err != nil {
		return bad(700027, "Client assertion failed signature validation.")
	}
	if key == "x5t#S256" && hdr[key] != thumb {
		return bad(700027, "Client assertion contains an invalid signature: the key (x5t#S256) is not registered for the app.")
	}
	if claims.Aud != aud || claims.Iss != app.ClientID || claims.Sub != app.ClientID {
		return bad(700021, fmt.Sprintf("Client assertion audience claim does not match Realm issuer: aud %q, iss %q, sub %q.", claims.Aud, claims.Iss, claims.Sub))
	}
	if claims.Exp < now.Unix() || claims.Nbf > now.Add(5*time.Minute).Unix() {
		return bad(700024, "Client assertion is not within its valid time range.")
	}
	return nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
