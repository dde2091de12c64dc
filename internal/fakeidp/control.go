package fakeidp

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// controlStats is the JSON of GET /_fake/stats: the Stats fields under
// their Go names, plus TooFastPolls and LastTenant.
type controlStats struct {
	Stats
	TooFastPolls int
	LastTenant   string
}

// handleControl serves the control API for shell scripts driving the
// standalone server. Every call answers 200 with a JSON body, or 400/404
// with a plain-text reason.
//
//	GET  /_fake/stats                              Stats as JSON
//	GET  /_fake/last-authorize                     query of the last authorize request, as JSON
//	GET  /_fake/pending                            user codes of pending device flows, as a JSON array
//	POST /_fake/revoke?aadsts=N                    Revoke(N)
//	POST /_fake/fail?n=&status=&ctype=             FailNext(n, status, ctype, request body)
//	POST /_fake/lifetime?seconds=N                 SetAccessTokenLifetime(N s)
//	POST /_fake/delay?ms=N                         SetTokenDelay(N ms)
//	POST /_fake/approve?user_code=&login=          ApproveDevice
//	POST /_fake/device-script?steps=a,b            SetDeviceScript(a, b) ("" clears)
//	POST /_fake/manual-approval?on=1|0             ManualDeviceApproval
//	POST /_fake/deny?error=&description=           DenyAuthorize
func (s *Server) handleControl(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("op")
	q := r.URL.Query()
	get := map[string]bool{"stats": true, "last-authorize": true, "pending": true}
	if get[name] {
		if r.Method != http.MethodGet {
			http.Error(w, "use GET", http.StatusMethodNotAllowed)
			return
		}
	} else if r.Method != http.MethodPost {
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	intArg := func(key string, def int) (int, bool) {
		v := q.Get(key)
		if v == "" {
			return def, true
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			http.Error(w, fmt.Sprintf("bad %s=%q", key, v), http.StatusBadRequest)
			return 0, false
		}
		return n, true
	}

	switch name {
	case "stats":
		s.mu.Lock()
		st := controlStats{Stats: s.stats, TooFastPolls: s.tooFastPolls, LastTenant: s.lastTenant}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, st)
	case "last-authorize":
		v := s.LastAuthorize()
		if v == nil {
			v = map[string][]string{}
		}
		writeJSON(w, http.StatusOK, v)
	case "pending":
		codes := s.PendingUserCodes()
		if codes == nil {
			codes = []string{}
		}
		writeJSON(w, http.StatusOK, codes)
	case "revoke":
		n, ok := intArg("aadsts", 70000)
		if !ok {
			return
		}
		if n <= 0 {
			n = 70000
		}
		s.Revoke(n)
		writeJSON(w, http.StatusOK, map[string]int{"revoked_with": n})
	case "fail":
		n, ok := intArg("n", 1)
		if !ok {
			return
		}
		status, ok := intArg("status", http.StatusServiceUnavailable)
		if !ok {
			return
		}
		if status < 100 || status > 999 {
			http.Error(w, "bad status", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.FailNext(n, status, q.Get("ctype"), string(body))
		writeJSON(w, http.StatusOK, map[string]int{"n": n, "status": status})
	case "lifetime":
		n, ok := intArg("seconds", 0)
		if !ok {
			return
		}
		s.SetAccessTokenLifetime(time.Duration(n) * time.Second)
		writeJSON(w, http.StatusOK, map[string]int{"seconds": n})
	case "delay":
		n, ok := intArg("ms", 0)
		if !ok {
			return
		}
		s.SetTokenDelay(time.Duration(n) * time.Millisecond)
		writeJSON(w, http.StatusOK, map[string]int{"ms": n})
	case "approve":
		if err := s.ApproveDevice(q.Get("user_code"), q.Get("login")); err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"approved": normUserCode(q.Get("user_code"))})
	case "device-script":
		var steps []string
		if v := q.Get("steps"); v != "" {
			steps = strings.Split(v, ",")
		}
		for _, st := range steps {
			if !validStep(st) {
				http.Error(w, fmt.Sprintf("unknown step %q", st), http.StatusBadRequest)
				return
			}
		}
		s.SetDeviceScript(steps...)
		if steps == nil {
			steps = []string{}
		}
		writeJSON(w, http.StatusOK, map[string][]string{"steps": steps})
	case "manual-approval":
		on := q.Get("on") == "1" || q.Get("on") == "true"
		s.ManualDeviceApproval(on)
		writeJSON(w, http.StatusOK, map[string]bool{"on": on})
	case "deny":
		s.DenyAuthorize(q.Get("error"), q.Get("description"))
		writeJSON(w, http.StatusOK, map[string]string{"error": q.Get("error")})
	default:
		http.NotFound(w, r)
	}
}
