package workflows_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/crmflow/crmflow/workflows"
)

func TestValidateOperator(t *testing.T) {
	for _, ok := range []string{"api", "alice", "Jane Doë", "ops@example.com", strings.Repeat("o", 100)} {
		assert.NoError(t, workflows.ValidateOperator(ok), "%q", ok)
	}
	for _, bad := range []string{"", "   ", "ali\x00ce", "bob\x1b[31m", "tab\there", "line\nbreak", "\xff\xfe", strings.Repeat("o", 101)} {
		assert.Error(t, workflows.ValidateOperator(bad), "%q", bad)
	}
}
