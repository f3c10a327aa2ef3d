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

// ValidateKey rejects business keys that would make ambiguous or unreadable
// workflow IDs: empty, too long, or holding "/", whitespace or control
// characters. kind names the key in the error ("order ID", "SKU"); the
// error is ErrInvalidKey to errors.Is.
func ValidateKey(kind, key string) error {
	switch {
	case key == "":
		return invalidKey(fmt.Sprintf("%s is empty", kind))
	case len(key) > 200:
		return invalidKey(fmt.Sprintf("%s is longer than 200 bytes", kind))
	case strings.ContainsAny(key, "/\\"):
		return invalidKey(fmt.Sprintf("%s %q must not contain a slash", kind, key))
	}
	for _, r := range key {
		if r <= ' ' || r == 0x7f {
			return invalidKey(fmt.Sprintf("%s %q must not contain whitespace or control characters", kind, key))
		}
	}
	return nil
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
