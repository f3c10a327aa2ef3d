package contract_test

import (
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"

	"github.com/crmflow/crmflow/contract"
)

func TestValidateOperator(t *testing.T) {
	for _, ok := range []string{"api", "alice", "Jane Doë", "ops@example.com", strings.Repeat("o", 100)} {
		assert.NoError(t, contract.ValidateOperator(ok), "%q", ok)
	}
	for _, bad := range []string{"", "   ", "ali\x00ce", "bob\x1b[31m", "tab\there", "line\nbreak", "\xff\xfe", strings.Repeat("o", 101)} {
		assert.Error(t, contract.ValidateOperator(bad), "%q", bad)
	}
}

func TestValidateKeyIsErrInvalidKey(t *testing.T) {
	for _, ok := range []string{"ord-1", "SKU_42", strings.Repeat("k", 200)} {
		assert.NoError(t, contract.ValidateKey("key", ok), "%q", ok)
	}
	for _, bad := range []string{"", "a/b", `a\b`, "a b", "a\x00b", "a\x7fb", strings.Repeat("k", 201)} {
		err := contract.ValidateKey("key", bad)
		assert.ErrorIs(t, err, contract.ErrInvalidKey, "%q", bad)
		assert.NotContains(t, err.Error(), contract.ErrInvalidKey.Error(), "the message is the reason alone")
	}
}

// TestValidateKeyAllowsAndDenies: every rule of ValidateKey, each with the
// keys it lets through and the keys it refuses. The refused ones are what
// an attacker would use to make two keys look alike (bidi and zero-width
// characters), to break the workflow ID apart (slashes, dot segments), to
// smuggle terminal escapes into logs (C0/C1 controls), to get past a
// byte-wise check (invalid or overlong UTF-8), or to make a key no
// Temporal call can carry (anything beyond printable ASCII).
func TestValidateKeyAllowsAndDenies(t *testing.T) {
	allows := map[string]string{
		"letters, digits, dash":    "ord-1",
		"underscore":               "SKU_42",
		"dots inside":              "v1.2.3",
		"leading dot":              ".hidden",
		"three dots":               "...",
		"URL-ish punctuation":      "a:b#c+d@e?f=g&h%i",
		"the rest of printable":    "!\"$'()*,;<>[]^`{|}~",
		"200 bytes":                strings.Repeat("k", 200),
		"one byte":                 "k",
		"Stripe and Clerk id form": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
	}
	for name, key := range allows {
		assert.NoError(t, contract.ValidateKey("key", key), "%s: %q", name, key)
	}

	denies := []struct {
		name, key, reason string
	}{
		{"empty", "", "is empty"},
		{"201 bytes", strings.Repeat("k", 201), "longer than 200 bytes"},
		{"201 bytes with multi-byte runes", strings.Repeat("é", 100) + "k", "longer than 200 bytes"},
		{"invalid UTF-8", "ord\xff", "not valid UTF-8"},
		{"truncated UTF-8", "ord\xc3", "not valid UTF-8"},
		{"overlong slash", "a\xc0\xafb", "not valid UTF-8"},
		{"UTF-8 encoded surrogate", "a\xed\xa0\x80b", "not valid UTF-8"},
		{"slash", "a/b", "slash"},
		{"backslash", `a\b`, "slash"},
		{"dot", ".", "dot segment"},
		{"dot dot", "..", "dot segment"},
		{"space", "a b", "whitespace or control"},
		{"tab", "a\tb", "whitespace or control"},
		{"newline", "a\nb", "whitespace or control"},
		{"carriage return", "a\rb", "whitespace or control"},
		{"NUL", "a\x00b", "whitespace or control"},
		{"ESC", "a\x1b[31mb", "whitespace or control"},
		{"DEL", "a\x7fb", "whitespace or control"},
		{"C1 NEL U+0085", "a\u0085b", "whitespace or control"},
		{"C1 CSI U+009B", "a\u009b31mb", "whitespace or control"},
		{"no-break space U+00A0", "a\u00a0b", "whitespace or control"},
		{"ideographic space U+3000", "a\u3000b", "whitespace or control"},
		{"line separator U+2028", "a\u2028b", "whitespace or control"},
		{"LRM U+200E", "a\u200eb", "bidirectional"},
		{"RLM U+200F", "a\u200fb", "bidirectional"},
		{"LRE U+202A", "a\u202ab", "bidirectional"},
		{"RLE U+202B", "a\u202bb", "bidirectional"},
		{"PDF U+202C", "a\u202cb", "bidirectional"},
		{"LRO U+202D", "a\u202db", "bidirectional"},
		{"RLO U+202E", "a\u202eb", "bidirectional"},
		{"LRI U+2066", "a\u2066b", "bidirectional"},
		{"RLI U+2067", "a\u2067b", "bidirectional"},
		{"FSI U+2068", "a\u2068b", "bidirectional"},
		{"PDI U+2069", "a\u2069b", "bidirectional"},
		{"ALM U+061C", "a\u061cb", "bidirectional"},
		{"ZWSP U+200B", "a\u200bb", "invisible"},
		{"ZWNJ U+200C", "a\u200cb", "invisible"},
		{"ZWJ U+200D", "a\u200db", "invisible"},
		{"word joiner U+2060", "a\u2060b", "invisible"},
		{"BOM U+FEFF", "\ufeffa", "invisible"},
		{"soft hyphen U+00AD", "a\u00adb", "invisible"},
		{"invisible times U+2062", "a\u2062b", "invisible"},
		{"tag letter U+E0041", "a\U000E0041b", "invisible"},
		{"accented letter", "café-1", "printable ASCII"},
		{"Cyrillic look-alike of an ASCII key", "оrd-1", "printable ASCII"},
		{"CJK", "注文-1", "printable ASCII"},
		{"emoji", "🎉-1", "printable ASCII"},
		{"fullwidth solidus U+FF0F", "a\uff0fb", "printable ASCII"},
		{"U+FFFD as text", "a\ufffdb", "printable ASCII"},
	}
	for _, c := range denies {
		err := contract.ValidateKey("order ID", c.key)
		if !assert.Error(t, err, "%s: %q", c.name, c.key) {
			continue
		}
		assert.ErrorIs(t, err, contract.ErrInvalidKey, c.name)
		msg := err.Error()
		assert.True(t, strings.HasPrefix(msg, "order ID"), "%s: the message names the key: %q", c.name, msg)
		assert.Contains(t, msg, c.reason, c.name)
		assert.NotContains(t, msg, contract.ErrInvalidKey.Error(), "%s: the message is the reason alone", c.name)
		for _, r := range msg {
			assert.True(t, r == ' ' || unicode.IsPrint(r), "%s: the message shows the key escaped, never raw: %q", c.name, msg)
		}
	}
}
