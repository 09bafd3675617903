package webhook

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
	"strings"
)

// macState is a reusable HMAC-SHA256 state, with room for its sum.
type macState struct {
	hash.Hash
	sum [sha256.Size]byte
}

// verify checks the delivery signature against every secret in constant
// time. It returns a reason when the delivery is not authentic.
func (h *Handler) verify(hdr http.Header, body []byte) (bool, string) {
	if sig := header(hdr, "X-Hub-Signature-256"); sig != "" {
		var mac [sha256.Size]byte
		if !decodeSignature(mac[:], sig, "sha256=") {
			return false, "malformed X-Hub-Signature-256"
		}
		for i := range h.secrets {
			m := h.hashes[i].Get().(*macState)
			m.Reset()
			m.Write(body)
			good := hmac.Equal(m.Sum(m.sum[:0]), mac[:])
			h.hashes[i].Put(m)
			if good {
				return true, ""
			}
		}
		return false, "signature does not match: check the webhook secret"
	}
	if sig := header(hdr, "X-Hub-Signature"); sig != "" && h.allowSHA1 {
		var mac [sha1.Size]byte
		if !decodeSignature(mac[:], sig, "sha1=") {
			return false, "malformed X-Hub-Signature"
		}
		for _, key := range h.secrets {
			m := hmac.New(sha1.New, key)
			m.Write(body)
			if hmac.Equal(m.Sum(nil), mac[:]) {
				return true, ""
			}
		}
		return false, "signature does not match: check the webhook secret"
	}
	return false, "missing X-Hub-Signature-256: the webhook must have a secret"
}

// decodeSignature decodes the hex digest of a signature header into mac,
// which has the digest's size.
func decodeSignature(mac []byte, sig, prefix string) bool {
	// GitHub sends "sha256=" and lower-case hex; the algorithm name and
	// the hex digits are matched in any case, as the digest is.
	sig = strings.TrimSpace(sig)
	if len(sig) < len(prefix) || !strings.EqualFold(sig[:len(prefix)], prefix) {
		return false
	}
	hexSig := sig[len(prefix):]
	var digits [2 * sha256.Size]byte
	if len(hexSig) != 2*len(mac) || len(hexSig) > len(digits) {
		return false
	}
	// encoding/hex decodes either case, by a table.
	n := copy(digits[:], hexSig)
	_, err := hex.Decode(mac, digits[:n])
	return err == nil
}

// Sign returns the X-Hub-Signature-256 header value for body, for tests
// and for tools that replay deliveries.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
