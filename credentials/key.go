package credentials

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"regexp"
	"strings"
)

var (
	pemBegin = regexp.MustCompile(`-----BEGIN ([A-Z0-9 ]+)-----`)
	// literalNewline matches "\n" and "\r\n" typed as backslash escapes, as
	// happens when a PEM is pasted into a one-line environment variable.
	literalNewline = strings.NewReplacer(`\r\n`, "\n", `\n`, "\n", `\r`, "\n")
)

// repairPEM returns a canonical PEM for an App private key that may have
// been mangled on its way into an environment variable or a YAML file:
// surrounding quotes, literal "\n" sequences, CRLF line ends, indentation,
// or a body folded onto one line. A key that was base64-encoded as a whole
// is decoded. It does not parse the key; ParsePrivateKey does.
func repairPEM(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if s == "" {
		return "", fmt.Errorf("%w: the key is empty", ErrInvalidKey)
	}
	if !strings.Contains(s, "-----BEGIN") {
		if dec, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), "")); err == nil && bytes.Contains(dec, []byte("-----BEGIN")) {
			s = string(dec)
		} else {
			return "", fmt.Errorf("%w: no PEM block found; paste the whole .pem file GitHub gave you, including the -----BEGIN RSA PRIVATE KEY----- and -----END RSA PRIVATE KEY----- lines", ErrInvalidKey)
		}
	}
	s = literalNewline.Replace(s)

	m := pemBegin.FindStringSubmatchIndex(s)
	if m == nil {
		return "", fmt.Errorf("%w: malformed -----BEGIN line", ErrInvalidKey)
	}
	label := s[m[2]:m[3]]
	end := "-----END " + label + "-----"
	rest := s[m[1]:]
	i := strings.Index(rest, end)
	if i < 0 {
		return "", fmt.Errorf("%w: no %q line; the key looks truncated, paste the whole file", ErrInvalidKey, end)
	}
	body := rest[:i]
	if strings.Contains(body, ":") {
		return "", fmt.Errorf("%w: the key is encrypted (it has PEM headers such as Proc-Type); export it without a passphrase", ErrInvalidKey)
	}
	b64 := strings.Join(strings.Fields(body), "")
	if _, err := base64.StdEncoding.DecodeString(b64); err != nil {
		return "", fmt.Errorf("%w: the key body is not valid base64 (%v); paste the file unchanged", ErrInvalidKey, err)
	}
	var out strings.Builder
	out.WriteString("-----BEGIN " + label + "-----\n")
	for len(b64) > 64 {
		out.WriteString(b64[:64] + "\n")
		b64 = b64[64:]
	}
	if b64 != "" {
		out.WriteString(b64 + "\n")
	}
	out.WriteString(end + "\n")
	return out.String(), nil
}

// ParsePrivateKey parses a GitHub App private key in PKCS#1 ("RSA PRIVATE
// KEY") or PKCS#8 ("PRIVATE KEY") form, repaired first if it was mangled
// on its way into an environment variable or a YAML file (quotes, literal
// "\n", CRLF, indentation, a body folded onto one line, base64 of the
// whole file). Keys that are not RSA are rejected: GitHub Apps sign their
// JWTs with RS256. Hosts rarely need it: AppConfig.Validate and package
// github call it; a host may check a key with it before storing one (an
// upload form).
func ParsePrivateKey(raw string) (*rsa.PrivateKey, error) {
	fixed, err := repairPEM(raw)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode([]byte(fixed))
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block could be decoded", ErrInvalidKey)
	}
	switch block.Type {
	case "RSA PRIVATE KEY", "PRIVATE KEY":
	case "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "DSA PRIVATE KEY":
		return nil, fmt.Errorf("%w: this is an %s, not the RSA key GitHub generates for Apps; download a new private key from the App's settings page", ErrInvalidKey, strings.ToLower(block.Type))
	case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
		return nil, fmt.Errorf("%w: this is a %s, not a private key", ErrInvalidKey, strings.ToLower(block.Type))
	default:
		return nil, fmt.Errorf("%w: unexpected PEM block %q; expected RSA PRIVATE KEY or PRIVATE KEY", ErrInvalidKey, block.Type)
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: neither PKCS#1 nor PKCS#8: %v", ErrInvalidKey, err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: the PKCS#8 key is %T, not RSA; GitHub Apps use RSA keys", ErrInvalidKey, k)
	}
	return rk, nil
}
