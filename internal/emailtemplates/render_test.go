package emailtemplates_test

import (
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/emailtemplates"
)

func set(t *testing.T) *emailtemplates.Set {
	t.Helper()
	s, err := emailtemplates.Default()
	require.NoError(t, err, "the embedded templates must parse")
	return s
}

// receiptData is what the order confirmation passes, after a JSON round
// trip through Temporal (numbers become float64).
func receiptData(t *testing.T) map[string]any {
	t.Helper()
	raw := `{"order_id":"o-42","customer_name":"Ada <Lovelace>","amount_cents":4250,"currency":"eur",
"confirmed_at":"2026-08-21T10:00:00Z","lines":[
 {"sku":"mug","name":"Mug & Saucer","quantity":2,"unit_price_cents":1500,"total_cents":3000},
 {"sku":"tea","name":"Tea","quantity":1,"unit_price_cents":1250,"total_cents":1250}]}`
	var data map[string]any
	require.NoError(t, json.Unmarshal([]byte(raw), &data))
	return data
}

func TestEmbeddedTemplates(t *testing.T) {
	assert.Equal(t, []string{"payment-receipt.v1", "welcome.v1"}, set(t).Names())
}

func TestPaymentReceiptCarriesLinesAndAmount(t *testing.T) {
	m, err := set(t).Render("payment-receipt", receiptData(t))
	require.NoError(t, err)
	assert.Equal(t, "payment-receipt", m.Template)
	assert.Equal(t, "v1", m.Version)
	assert.Equal(t, "Your receipt for order o-42", m.Subject)

	for _, want := range []string{"Hi Ada <Lovelace>,", "order o-42 is confirmed", "2 x Mug & Saucer (mug) at 15.00 EUR: 30.00 EUR",
		"1 x Tea (tea) at 12.50 EUR: 12.50 EUR", "Total paid: 42.50 EUR", "Confirmed: 2026-08-21T10:00:00Z"} {
		assert.Contains(t, m.Text, want)
	}
	assert.NotContains(t, m.Text, "<no value>")
	assert.False(t, strings.HasPrefix(m.Text, "\n"), "the define blocks leave no blank lines on top")

	// The HTML part escapes what the data holds.
	for _, want := range []string{"<title>Your receipt for order o-42</title>", "Hi Ada &lt;Lovelace&gt;,",
		"Mug &amp; Saucer", "<td align=\"right\">30.00 EUR</td>", "<th align=\"right\">42.50 EUR</th>"} {
		assert.Contains(t, m.HTML, want)
	}
	assert.NotContains(t, m.HTML, "<Lovelace>")
	assert.NotContains(t, m.HTML, "<no value>")
}

func TestPaymentReceiptWithoutLinesOrName(t *testing.T) {
	data := receiptData(t)
	data["lines"] = []any{}
	delete(data, "customer_name")
	delete(data, "confirmed_at")
	m, err := set(t).Render("payment-receipt.v1", data)
	require.NoError(t, err)
	assert.Contains(t, m.Text, "Hi there,")
	assert.Contains(t, m.Text, "Total paid: 42.50 EUR")
	assert.NotContains(t, m.Text, "Confirmed:")
	assert.NotContains(t, m.Text+m.HTML, "<no value>")
}

func TestWelcome(t *testing.T) {
	m, err := set(t).Render("welcome", map[string]any{"name": "Grace", "email": "grace@example.com"})
	require.NoError(t, err)
	assert.Equal(t, "Welcome, Grace", m.Subject)
	assert.Contains(t, m.Text, "Hi Grace,")
	assert.Contains(t, m.Text, "ready for grace@example.com.")
	assert.Contains(t, m.HTML, "<strong>grace@example.com</strong>")

	// Nothing is required: a welcome without data still reads well.
	m, err = set(t).Render("welcome", nil)
	require.NoError(t, err)
	assert.Equal(t, "Welcome", m.Subject)
	assert.Contains(t, m.Text, "Hi there,")
	assert.NotContains(t, m.Text+m.HTML, "<no value>")
}

func TestRenderRefusesWhatItCannotRender(t *testing.T) {
	s := set(t)
	_, err := s.Render("invoice", nil)
	require.ErrorIs(t, err, emailtemplates.ErrUnknownTemplate)
	assert.Contains(t, err.Error(), "payment-receipt.v1", "the error lists the known templates")
	_, err = s.Render("welcome.v9", nil)
	require.ErrorIs(t, err, emailtemplates.ErrUnknownTemplate)

	data := receiptData(t)
	delete(data, "lines")
	delete(data, "currency")
	_, err = s.Render("payment-receipt", data)
	require.ErrorIs(t, err, emailtemplates.ErrMissingData)
	assert.Contains(t, err.Error(), "currency, lines")

	data = receiptData(t)
	data["amount_cents"] = 42.5
	_, err = s.Render("payment-receipt", data)
	require.ErrorIs(t, err, emailtemplates.ErrMissingData, "a fraction of a cent is wrong data, not a rounding")
}

func TestSubjectIsOneLine(t *testing.T) {
	m, err := set(t).Render("welcome", map[string]any{"name": "Eve\r\nBcc: all@example.com"})
	require.NoError(t, err)
	assert.Equal(t, "Welcome, Eve Bcc: all@example.com", m.Subject)
}

func TestMoneyMinorUnits(t *testing.T) {
	fs := fstest.MapFS{
		"m.v1.txt":  {Data: []byte(`{{define "subject"}}s{{end}}{{money .a .c}}`)},
		"m.v1.html": {Data: []byte(`x`)},
	}
	s, err := emailtemplates.Load(fs)
	require.NoError(t, err)
	for _, c := range []struct {
		amount   any
		currency string
		want     string
	}{
		{float64(4200), "eur", "42.00 EUR"},
		{int64(5), "usd", "0.05 USD"},
		{float64(0), "usd", "0.00 USD"},
		{float64(-150), "usd", "-1.50 USD"},
		{float64(500), "jpy", "500 JPY"},
		{float64(1234), "kwd", "1.234 KWD"},
		{json.Number("99"), "gbp", "0.99 GBP"},
	} {
		m, err := s.Render("m", map[string]any{"a": c.amount, "c": c.currency})
		require.NoError(t, err, "%v %s", c.amount, c.currency)
		assert.Equal(t, c.want+"\n", m.Text)
	}
	_, err = s.Render("m", map[string]any{"a": 1.0, "c": "euro"})
	assert.ErrorIs(t, err, emailtemplates.ErrMissingData)
}

func TestLoadRefusesIncompleteTemplates(t *testing.T) {
	for name, fs := range map[string]fstest.MapFS{
		"no html part":    {"a.v1.txt": {Data: []byte(`{{define "subject"}}s{{end}}`)}},
		"no subject":      {"a.v1.txt": {Data: []byte(`text`)}, "a.v1.html": {Data: []byte(`x`)}},
		"misnamed file":   {"a.txt": {Data: []byte(`x`)}},
		"broken template": {"a.v1.txt": {Data: []byte(`{{define "subject"}}s{{end}}{{if}}`)}, "a.v1.html": {Data: []byte(`x`)}},
	} {
		_, err := emailtemplates.Load(fs)
		assert.Error(t, err, name)
	}
	// A later version is what the bare name finds.
	s, err := emailtemplates.Load(fstest.MapFS{
		"a.v1.txt": {Data: []byte(`{{define "subject"}}one{{end}}`)}, "a.v1.html": {Data: []byte(`x`)},
		"a.v2.txt": {Data: []byte(`{{define "subject"}}two{{end}}`)}, "a.v2.html": {Data: []byte(`x`)},
	})
	require.NoError(t, err)
	m, err := s.Render("a", nil)
	require.NoError(t, err)
	assert.Equal(t, "v2", m.Version)
	assert.Equal(t, "two", m.Subject)
}
