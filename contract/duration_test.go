package contract_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/contract"
)

func TestParseDurationAccepts(t *testing.T) {
	day := 24 * time.Hour
	for in, want := range map[string]time.Duration{
		// Go's own form.
		"24h":      day,
		"1h30m":    90 * time.Minute,
		"90s":      90 * time.Second,
		"1.5h":     90 * time.Minute,
		"250ms":    250 * time.Millisecond,
		"0s":       0,
		"-1h":      -time.Hour,
		"2562047h": 2562047 * time.Hour,
		// ISO 8601.
		"PT24H":          day,
		"P1D":            day,
		"P14D":           14 * day,
		"P2W":            14 * day,
		"P1DT12H":        36 * time.Hour,
		"PT1H30M":        90 * time.Minute,
		"PT90M":          90 * time.Minute,
		"PT0.5S":         500 * time.Millisecond,
		"PT0,5S":         500 * time.Millisecond,
		"PT1.000000001S": time.Second + 1,
		"P0.5D":          12 * time.Hour,
		"PT0S":           0,
		"pt24h":          day,
		"P1W2DT3H4M5S":   9*day + 3*time.Hour + 4*time.Minute + 5*time.Second,
		"P106751D":       106751 * day,
	} {
		got, err := contract.ParseDuration(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
}

func TestParseDurationRefuses(t *testing.T) {
	for in, why := range map[string]string{
		"":                       "empty duration",
		"24":                     "is not a duration",
		"24 hours":               "is not a duration",
		"1d":                     "is not a duration",
		"soon":                   "is not a duration",
		"P":                      "no value",
		"PT":                     "no value",
		"P1Y":                    "years and months have no fixed length",
		"P1M":                    "years and months have no fixed length",
		"P1DT":                   "nothing after T",
		"PT1H2":                  "has no unit",
		"PT1D":                   `unexpected "D"`,
		"P1H":                    `unexpected "H"`,
		"PT1M1H":                 `unexpected "H"`,
		"PT1H1H":                 `unexpected "H"`,
		"P1D1D":                  `unexpected "D"`,
		"PTH":                    `no number before "H"`,
		"PT1..5S":                "is not a number",
		"PT.S":                   "is not a number",
		"P1DTT1H":                "two T separators",
		"P106752D":               "too long",
		"PT9999999999999999999S": "too long",
		"-PT1H":                  "is not a duration",
	} {
		_, err := contract.ParseDuration(in)
		if assert.Error(t, err, in) {
			assert.Contains(t, err.Error(), why, in)
		}
	}
}

// TestDurationInputsReadEveryForm: a workflow input's duration reads from
// nanoseconds (what Go clients and every recorded history hold), a Go
// duration string and an ISO 8601 one, and marshals as nanoseconds still.
func TestDurationInputsReadEveryForm(t *testing.T) {
	for _, form := range []string{`86400000000000`, `"24h"`, `"PT24H"`, `"P1D"`} {
		var in contract.OrderConfirmationInput
		require.NoError(t, json.Unmarshal([]byte(`{"order_id":"o-1","payment_timeout":`+form+`}`), &in), form)
		assert.Equal(t, contract.OrderConfirmationInput{OrderID: "o-1", PaymentTimeout: 24 * time.Hour}, in, form)
		out, err := json.Marshal(in)
		require.NoError(t, err)
		assert.JSONEq(t, `{"order_id":"o-1","payment_timeout":86400000000000}`, string(out), form)
	}

	var kr contract.KeyRotationInput
	require.NoError(t, json.Unmarshal([]byte(`{"provider":"stripe","grace":"PT2H","reminder_every":3600000000000}`), &kr))
	assert.Equal(t, contract.KeyRotationInput{Provider: "stripe", Grace: 2 * time.Hour, ReminderEvery: time.Hour}, kr)

	var dr contract.DataRetentionInput
	require.NoError(t, json.Unmarshal([]byte(`{"inbox":"P30D","dedup":"2160h","dead_letters":"P180D","audit":"P400D","batch_size":500}`), &dr))
	day := 24 * time.Hour
	assert.Equal(t, contract.DataRetentionInput{Inbox: 30 * day, Dedup: 90 * day, DeadLetters: 180 * day, Audit: 400 * day, BatchSize: 500}, dr)

	var al contract.AliasLifecycleInput
	require.NoError(t, json.Unmarshal([]byte(`{"alias_id":"al-1","email":"a@example.com","shadow_ttl":"P30D","state":{"state":"active","simplelogin_id":7,"alias_email":"x@sl.test","expires_at":"0001-01-01T00:00:00Z"}}`), &al))
	assert.Equal(t, 30*day, al.ShadowTTL)
	require.NotNil(t, al.State, "the nested state reads as before")
	assert.Equal(t, int64(7), al.State.SimpleLoginID)

	var ul contract.UserLifecycleInput
	require.NoError(t, json.Unmarshal([]byte(`{"user_id":"user_1","mailbox_check":"PT1H","mailbox_verify_wait":"P7D","state":{"primary_email":"a@example.com"}}`), &ul))
	assert.Equal(t, time.Hour, ul.MailboxCheck)
	assert.Equal(t, 7*day, ul.MailboxVerifyWait)
	require.NotNil(t, ul.State, "the nested state reads as before")
	assert.Equal(t, "a@example.com", ul.State.PrimaryEmail)

	var sr contract.StripeReconcileInput
	require.NoError(t, json.Unmarshal([]byte(`{"overlap":"10m","settle":"PT5M"}`), &sr))
	assert.Equal(t, contract.StripeReconcileInput{Overlap: 10 * time.Minute, Settle: 5 * time.Minute}, sr)

	// Absent, null and a JSON null input change nothing, as before.
	var empty contract.OrderConfirmationInput
	require.NoError(t, json.Unmarshal([]byte(`{"order_id":"o-2","payment_timeout":null}`), &empty))
	assert.Equal(t, contract.OrderConfirmationInput{OrderID: "o-2"}, empty)
	require.NoError(t, json.Unmarshal([]byte(`null`), &empty))
	assert.Equal(t, contract.OrderConfirmationInput{OrderID: "o-2"}, empty)
}

// TestDurationInputsRefuseBadStrings: a bad duration is an error naming
// the field and the forms it takes, never a zero (the default) in silence.
func TestDurationInputsRefuseBadStrings(t *testing.T) {
	for body, want := range map[string]string{
		`{"order_id":"o-1","payment_timeout":"24 hours"}`: `payment_timeout: "24 hours" is not a duration: use integer nanoseconds, a Go duration ("24h", "90m") or ISO 8601 ("PT24H", "P14D")`,
		`{"order_id":"o-1","payment_timeout":"P1M"}`:      `payment_timeout: "P1M" is not an ISO 8601 duration: years and months have no fixed length`,
		`{"order_id":"o-1","payment_timeout":""}`:         `payment_timeout: empty duration`,
		`{"order_id":"o-1","Payment_Timeout":"soon"}`:     `payment_timeout: "soon" is not a duration`,
		`{"order_id":"o-1","payment_timeout":true}`:       `cannot unmarshal bool`,
		`{"order_id":"o-1","payment_timeout":1.5}`:        `cannot unmarshal number 1.5`,
		`["o-1"]`: `cannot unmarshal array`,
	} {
		var in contract.OrderConfirmationInput
		err := json.Unmarshal([]byte(body), &in)
		if assert.Error(t, err, body) {
			assert.Contains(t, err.Error(), want, body)
		}
	}
	var kr contract.KeyRotationInput
	err := json.Unmarshal([]byte(`{"provider":"stripe","reminder_every":"daily"}`), &kr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `reminder_every: "daily" is not a duration`)
}
