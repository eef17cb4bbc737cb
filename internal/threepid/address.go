package threepid

import (
	"strings"

	"github.com/axon-matrix/axon/internal/account"
	"github.com/axon-matrix/axon/internal/mxerr"
)

// ValidateEmail checks an address and returns its canonical form. It
// accepts the common dot-atom form (local@domain, ASCII) and nothing that
// needs quoting: the address goes into SMTP commands and mail headers,
// and anything exotic there is more likely an injection attempt than a
// mailbox.
func ValidateEmail(raw string) (string, error) {
	bad := mxerr.InvalidParam("The email address is not valid")
	a := account.CanonicalEmail(raw)
	at := strings.LastIndexByte(a, '@')
	if len(a) > 254 || at < 1 || at == len(a)-1 {
		return "", bad
	}
	local, domain := a[:at], a[at+1:]
	if len(local) > 64 || !dotAtom(local, isAtext) || !dotAtom(domain, isDomainChar) {
		return "", bad
	}
	for label := range strings.SplitSeq(domain, ".") {
		if len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", bad
		}
	}
	return a, nil
}

// dotAtom reports whether s is non-empty runs of ok characters separated
// by single dots.
func dotAtom(s string, ok func(byte) bool) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && !ok(s[i]) {
			return false
		}
	}
	return true
}

// isAtext is RFC 5322 atext (lower case only: addresses are canonical).
func isAtext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+/=?^_`{|}~-", c) >= 0
}

func isDomainChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
}
