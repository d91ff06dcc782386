package redact

import "strings"

// Parameter names are compared in lower case. A name is secret when it
//   - contains pass (password, passwd, loginpass, passphrase, pass), pwd
//     (pwd, loginpwd), psw, secret (client_secret), token (token,
//     access_token, x-amz-security-token), auth (auth, authkey,
//     authorization), signature (x-amz-signature), credential
//     (x-amz-credential), apikey or api_key;
//   - or ends in key (key, apikey, accesskey, x-api-key), pas (loginpas:
//     the CGI spelling of Foscam-style cameras next to loginuse), pw or sig.
//
// These cover what cheap cameras put in their URLs (?user=admin&password=,
// ?usr=admin&pwd=, ?loginuse=admin&loginpas=, ?u=&pw=), signed URLs (sig,
// signature, X-Amz-*) and bearer tokens in query strings. A substring
// rule masks some innocent names too (bypass=1, monkey=2); that is the
// side to err on. User names (user, usr, username, loginuse) are left
// visible, as in userinfo: the operator needs them to tell which account a
// camera is reached with, and they are not what an attacker lacks.
var (
	secretStems    = []string{"pass", "pwd", "psw", "secret", "token", "auth", "signature", "credential", "apikey", "api_key"}
	secretSuffixes = []string{"key", "pas", "pw", "sig"}
)

func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range secretStems {
		if strings.Contains(n, s) {
			return true
		}
	}
	for _, s := range secretSuffixes {
		if strings.HasSuffix(n, s) {
			return true
		}
	}
	return false
}

func isNameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == '[' || c == ']'
}

// startsParam tells whether a parameter name may begin after c.
func startsParam(c byte) bool {
	return isSpace(c) || strings.IndexByte("?&;#\"'`([{,|", c) >= 0
}

// paramAt tells whether s[i:] begins with "name=".
func paramAt(s string, i int) bool {
	j := i
	for j < len(s) && isNameChar(s[j]) {
		j++
	}
	return j > i && j < len(s) && s[j] == '='
}

// queryValues returns the spans of secret parameter values. With quotes,
// a value inside a double-quoted string ends at its closing quote.
func queryValues(s string, quotes bool) []span {
	var out []span
	inQuote := false
	q := 0 // s[:q] has been scanned for quotes
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			continue
		}
		j := i
		for j > 0 && isNameChar(s[j-1]) {
			j--
		}
		if j == i || (j > 0 && !startsParam(s[j-1])) || !secretName(s[j:i]) {
			continue
		}
		if quotes {
			for ; q < j; q++ {
				if s[q] == '"' && !escaped(s, q) {
					inQuote = !inQuote
				}
			}
		}
		end := valueEnd(s, i+1, quotes && inQuote)
		if end > i+1 {
			out = append(out, span{i + 1, end})
		}
		i = end - 1
	}
	return out
}

// valueEnd finds where the value starting at v ends: before "&name=" or
// ";name=", at the closing quote of a quoted string, else at the end of s.
// A value may contain '&', ';', '#', spaces and quotes: a password may,
// and a person reads "password=a&b" as "a&b". Neither a separator nor a
// quote ends a value as its first byte, so a secret beginning with "&x="
// is masked (and an empty value takes what follows with it).
func valueEnd(s string, v int, quoted bool) int {
	for k := v; k < len(s); k++ {
		switch c := s[k]; {
		case (c == '&' || c == ';') && k > v:
			if paramAt(s, k+1) {
				return k
			}
		case quoted && c == '"' && k > v && !escaped(s, k) && closesQuote(s, k):
			return k
		}
	}
	return len(s)
}

// closesQuote tells whether the quote at s[k] ends a quoted string: it is
// followed by the end of the text, a space or punctuation.
func closesQuote(s string, k int) bool {
	return k+1 == len(s) || isSpace(s[k+1]) || strings.IndexByte(":,;)]}>", s[k+1]) >= 0
}
