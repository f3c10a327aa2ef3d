package contract_test

import (
	"strings"
	"testing"

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
