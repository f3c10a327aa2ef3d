package contract

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidKey marks a business key ValidateKey refused: no workflow can
// ever be started or signalled for it, so retrying is pointless.
var ErrInvalidKey = errors.New("invalid business key")

// maxKeyBytes is the longest business key ValidateKey accepts, in bytes.
const maxKeyBytes = 200

// ValidateKey rejects business keys that would make ambiguous, unreadable or
// unusable workflow IDs. A key is 1 to 200 bytes of printable ASCII other
// than space, slash and backslash, and is not "." or ".." (which an HTTP
// path cannot carry as a segment). kind names the key in the error ("order
// ID", "SKU"); the error is ErrInvalidKey to errors.Is, says what is wrong
// (invalid UTF-8, whitespace or control characters, bidirectional controls,
// invisible format characters such as zero-width ones, other non-ASCII) and
// shows the key escaped, never raw.
//
// Why ASCII only: Temporal's Go SDK sends the workflow ID in a gRPC header
// (temporal-resource-id) on every start and signal, and gRPC refuses header
// values outside printable ASCII before the call leaves the process. A key
// with any other character can never start or signal its workflow; refused
// here, it is a clear 400 (or an inbox row ignored with its reason) instead
// of a 503 the caller, or the dispatcher, retries forever.
func ValidateKey(kind, key string) error {
	switch {
	case key == "":
		return invalidKey(fmt.Sprintf("%s is empty", kind))
	case len(key) > maxKeyBytes:
		return invalidKey(fmt.Sprintf("%s is longer than %d bytes", kind, maxKeyBytes))
	case !utf8.ValidString(key):
		return invalidKey(fmt.Sprintf("%s %q is not valid UTF-8", kind, key))
	case strings.ContainsAny(key, "/\\"):
		return invalidKey(fmt.Sprintf("%s %q must not contain a slash", kind, key))
	case key == "." || key == "..":
		return invalidKey(fmt.Sprintf("%s %q must not be a dot segment", kind, key))
	}
	for _, r := range key {
		switch {
		case unicode.IsSpace(r) || unicode.IsControl(r):
			return invalidKey(fmt.Sprintf("%s %q must not contain whitespace or control characters", kind, key))
		case isBidiControl(r):
			return invalidKey(fmt.Sprintf("%s %q must not contain bidirectional control characters", kind, key))
		case unicode.Is(unicode.Cf, r):
			return invalidKey(fmt.Sprintf("%s %q must not contain invisible format characters (zero-width and the like)", kind, key))
		case r > unicode.MaxASCII:
			return invalidKey(fmt.Sprintf("%s %q must be printable ASCII", kind, key))
		}
	}
	return nil
}

// isBidiControl reports the characters that reorder text for display:
// the marks (LRM, RLM, ALM), embeddings and overrides (LRE..RLO) and
// isolates (LRI..PDI).
func isBidiControl(r rune) bool {
	switch {
	case r == 0x200E, r == 0x200F, r == 0x061C:
		return true
	case 0x202A <= r && r <= 0x202E, 0x2066 <= r && r <= 0x2069:
		return true
	}
	return false
}

// invalidKey is ValidateKey's error: its message alone, and ErrInvalidKey
// to errors.Is.
type invalidKey string

func (e invalidKey) Error() string        { return string(e) }
func (e invalidKey) Is(target error) bool { return target == ErrInvalidKey }

// ValidateOperator rejects an operator name that would be unreadable where
// it is recorded (a run's history, the dead-letter table, logs): empty,
// longer than 100 bytes, not UTF-8, or holding control characters.
func ValidateOperator(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return errors.New("operator is empty")
	case len(name) > 100:
		return errors.New("operator is longer than 100 bytes")
	case !utf8.ValidString(name):
		return errors.New("operator is not UTF-8 text")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("operator %q holds a control character", name)
		}
	}
	return nil
}
