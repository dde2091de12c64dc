package flows

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"time"
)

// Life of the loopback certificate: it must outlast the wait for the
// browser (BrowserTimeout), and tolerate a clock a little behind.
const (
	certBackdate = time.Minute
	certLife     = time.Hour
)

// loopbackCert makes a self-signed ECDSA P-256 certificate for localhost,
// 127.0.0.1 and ::1, valid from a minute before now for an hour. The
// private key exists only in the returned value, in memory.
func loopbackCert(now time.Time) (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   "localhost",
			Organization: []string{"oauth2mail one-time loopback certificate"},
		},
		NotBefore:   now.Add(-certBackdate),
		NotAfter:    now.Add(certLife),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		// An end-entity certificate: browsers refuse a CA one as a site's.
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, nil
}

// fingerprint is a certificate's SHA-256 fingerprint as browsers' certificate
// viewers and `openssl x509 -fingerprint -sha256` show it: upper-case hex
// pairs joined by colons.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// certWarning tells the person, before the browser comes back, what its
// certificate warning will look like, why it is expected and what to click.
func certWarning(out io.Writer, redirect string, cert *x509.Certificate) {
	fmt.Fprintf(out, `oauth2mail: the sign-in comes back to %s over https, with a certificate
oauth2mail: made a moment ago on this machine, so after you sign in the browser will warn:
  Chrome, Edge: "Your connection is not private" (NET::ERR_CERT_AUTHORITY_INVALID):
                click Advanced, then "Proceed to localhost (unsafe)" (Edge: "Continue to localhost (unsafe)")
  Firefox:      "Warning: Potential Security Risk Ahead" (MOZILLA_PKIX_ERROR_SELF_SIGNED_CERT,
                or SEC_ERROR_UNKNOWN_ISSUER): click Advanced..., then "Accept the Risk and Continue"
  Safari:       "This Connection Is Not Private": click Show Details, then "visit this website"
oauth2mail: this is expected: the page is oauth2mail itself, on this machine; the certificate is
oauth2mail: valid until %s and its key never leaves oauth2mail's memory. To check it is this one,
oauth2mail: compare the SHA-256 fingerprint in the browser's certificate viewer (it may show
oauth2mail: lower case or spaces instead of colons) with:
  SHA-256 fingerprint: %s
`, redirect, cert.NotAfter.Local().Format("15:04"), fingerprint(cert.Raw))
}
