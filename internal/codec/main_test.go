package codec_test

import (
	"crypto/rand"
	"encoding/base64"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// newKey returns a fresh random master key in config form.
func newKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(k)
}

func newKeyring(t *testing.T, current string, previous ...string) *credentials.Keyring {
	t.Helper()
	kr, err := credentials.NewKeyring(current, previous...)
	require.NoError(t, err)
	return kr
}

// newSecret is a secret-looking string unique to the test, so finding it
// anywhere can only mean it leaked.
func newSecret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}
