package fakeidp

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// deviceCodeLifetime is Entra ID's default expires_in for device codes.
const deviceCodeLifetime = 900 * time.Second

// Device script steps.
const (
	stepPending  = "authorization_pending"
	stepSlowDown = "slow_down"
	stepDeclined = "authorization_declined"
	stepExpired  = "expired_token"
	stepBadCode  = "bad_verification_code"
)

func validStep(s string) bool {
	switch s {
	case stepPending, stepSlowDown, stepDeclined, stepExpired, stepBadCode:
		return true
	}
	return false
}

type device struct {
	code     string
	userCode string
	clientID string
	tenant   string
	scopes   []string
	issued   time.Time
	expires  time.Time
	script   []string
	interval time.Duration // what the client was told, grown by slow_down
	lastPoll time.Time
	approved bool
	login    string
	final    string // a script step that ended the flow
	redeemed bool
}

type deviceCodeResponse struct {
	DeviceCode      string `json:"device_code"`
	UserCode        string `json:"user_code"`
	VerificationURI string `json:"verification_uri"`
	ExpiresIn       int    `json:"expires_in"`
	Interval        int    `json:"interval"`
	Message         string `json:"message"`
}

// handleDeviceCode is POST /{tenant}/oauth2/v2.0/devicecode.
func (s *Server) handleDeviceCode(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	s.mu.Lock()
	s.stats.DeviceCodes++
	s.lastTenant = tenant
	s.mu.Unlock()

	if r.Method != http.MethodPost {
		s.writeError(w, r, errNotPost(r.Method))
		return
	}
	form := postForm(r)
	if r.Header.Get("Authorization") != "" || form.Get("client_secret") != "" || form.Get("client_assertion") != "" {
		s.writeError(w, r, errPublicClientSecret())
		return
	}
	clientID, cerr := s.checkClientID(form, tenant)
	if cerr != nil {
		s.writeError(w, r, *cerr)
		return
	}
	scopes := splitScopes(form.Get("scope"))
	if len(scopes) == 0 {
		s.writeError(w, r, errMissing("scope"))
		return
	}
	if !hasScope(scopes, "offline_access") {
		s.writeError(w, r, idpError{status: 400, err: "invalid_scope", code: 70011,
			msg: "The provided value for the input parameter 'scope' isn't valid. [fake: offline_access is required, or no refresh token would be issued]"})
		return
	}

	now := time.Now()
	d := &device{
		code:     newDeviceCode(),
		userCode: newUserCode(),
		clientID: clientID,
		tenant:   tenant,
		scopes:   scopes,
		issued:   now,
		expires:  now.Add(deviceCodeLifetime),
		interval: time.Duration(s.opt.DeviceInterval) * time.Second,
	}
	verification := s.baseURL(r) + "/devicelogin"
	s.mu.Lock()
	d.script = s.deviceScript
	s.deviceScript = nil
	for s.users[d.userCode] != nil {
		d.userCode = newUserCode()
	}
	s.devices[d.code] = d
	s.users[d.userCode] = d
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, deviceCodeResponse{
		DeviceCode:      d.code,
		UserCode:        d.userCode,
		VerificationURI: verification,
		ExpiresIn:       int(deviceCodeLifetime / time.Second),
		Interval:        s.opt.DeviceInterval,
		Message:         "To sign in, use a web browser to open the page " + verification + " and enter the code " + d.userCode + " to authenticate.",
	})
}

// pollDevice handles one device_code grant request. It is called with
// s.mu held and returns the grant to mint tokens from, or an error.
func (s *Server) pollDevice(form url.Values, tenant string, now time.Time) (*grant, *idpError) {
	code := form.Get("device_code")
	if code == "" {
		e := errMissing("device_code")
		return nil, &e
	}
	d := s.devices[code]
	if d == nil || d.clientID != form.Get("client_id") || d.tenant != tenant {
		// The poll must use the client and tenant of the devicecode request.
		e := errDeviceBadCode()
		return nil, &e
	}
	if d.redeemed {
		s.stats.PollsAfterSuccess++
		e := errDeviceRedeemed()
		return nil, &e
	}
	last := d.lastPoll
	if last.IsZero() {
		last = d.issued
	}
	if now.Sub(last) < d.interval*8/10 {
		s.tooFastPolls++
	}
	d.lastPoll = now

	var e idpError
	switch {
	case d.final != "":
		e = stepError(d.final)
	case !now.Before(d.expires):
		d.final = stepExpired
		e = stepError(stepExpired)
	case len(d.script) > 0:
		step := d.script[0]
		d.script = d.script[1:]
		switch step {
		case stepSlowDown:
			d.interval += 5 * time.Second
		case stepDeclined, stepExpired, stepBadCode:
			d.final = step
		}
		e = stepError(step)
	case s.manualApproval && !d.approved:
		e = errDevicePending()
	default:
		d.redeemed = true
		login := d.login
		if login == "" {
			login = s.opt.DefaultUser
		}
		return s.newGrant(login, d.clientID, d.tenant, d.scopes, now), nil
	}
	return nil, &e
}

func stepError(step string) idpError {
	switch step {
	case stepSlowDown:
		return errDeviceSlowDown()
	case stepDeclined:
		return errDeviceDeclined()
	case stepExpired:
		return errDeviceExpired()
	case stepBadCode:
		return errDeviceBadCode()
	}
	return errDevicePending()
}

// ApproveDevice approves the device flow showing userCode (case, dashes
// and spaces are ignored) for login ("" means Options.DefaultUser), as if
// the user had signed in at verification_uri. Script steps still left are
// played first. It fails for an unknown, expired, finished or already
// redeemed code.
func (s *Server) ApproveDevice(userCode, login string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.users[normUserCode(userCode)]
	switch {
	case d == nil:
		return errors.New("fakeidp: unknown user code")
	case d.redeemed:
		return errors.New("fakeidp: device code already redeemed")
	case d.final != "":
		return errors.New("fakeidp: device flow already ended with " + d.final)
	case !time.Now().Before(d.expires):
		return errors.New("fakeidp: device code expired")
	}
	d.approved = true
	d.login = login
	return nil
}

// PendingUserCodes returns the user codes of device flows that have not
// yet returned tokens or ended, oldest first.
func (s *Server) PendingUserCodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ds []*device
	now := time.Now()
	for _, d := range s.devices {
		if !d.redeemed && d.final == "" && now.Before(d.expires) {
			ds = append(ds, d)
		}
	}
	slices.SortFunc(ds, func(a, b *device) int { return a.issued.Compare(b.issued) })
	codes := make([]string, len(ds))
	for i, d := range ds {
		codes[i] = d.userCode
	}
	return codes
}
