package emailtemplates

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// funcs are the functions both parts of every template may call.
var funcs = map[string]any{
	"money":   money,
	"default": fallback,
}

// minorUnits gives the currencies whose minor unit is not a hundredth, as
// Stripe counts them: zero-decimal currencies are whole units, three-decimal
// ones thousandths. Every other currency has two decimals.
var minorUnits = map[string]int{
	"bif": 0, "clp": 0, "djf": 0, "gnf": 0, "jpy": 0, "kmf": 0, "krw": 0, "mga": 0,
	"pyg": 0, "rwf": 0, "ugx": 0, "vnd": 0, "vuv": 0, "xaf": 0, "xof": 0, "xpf": 0,
	"bhd": 3, "jod": 3, "kwd": 3, "omr": 3, "tnd": 3,
}

// money formats an amount in minor units and a currency code, as Stripe
// writes them (4200, "eur"), as "42.00 EUR". The amount must be a whole
// number: JSON brings numbers as float64, and a fraction of a cent means
// the data is wrong, which a receipt must not hide.
func money(amount, currency any) (string, error) {
	cents, err := wholeNumber(amount)
	if err != nil {
		return "", fmt.Errorf("money: amount %v: %w", amount, err)
	}
	code, ok := currency.(string)
	if !ok || len(code) != 3 {
		return "", fmt.Errorf("money: currency %v is not a three-letter code", currency)
	}
	code = strings.ToLower(code)
	decimals, ok := minorUnits[code]
	if !ok {
		decimals = 2
	}
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	digits := strconv.FormatInt(cents, 10)
	if decimals > 0 {
		if len(digits) <= decimals {
			digits = strings.Repeat("0", decimals-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-decimals] + "." + digits[len(digits)-decimals:]
	}
	return sign + digits + " " + strings.ToUpper(code), nil
}

// wholeNumber reads an integer however the data carries it.
func wholeNumber(v any) (int64, error) {
	switch n := v.(type) {
	case int:
		return int64(n), nil
	case int32:
		return int64(n), nil
	case int64:
		return n, nil
	case float64:
		if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return 0, fmt.Errorf("not a whole number")
		}
		return int64(n), nil
	case json.Number:
		return n.Int64()
	case string:
		return strconv.ParseInt(n, 10, 64)
	}
	return 0, fmt.Errorf("not a number")
}

// fallback returns v, or def when v is missing or empty: default "there"
// .name greets someone whose name is unknown.
func fallback(def, v any) any {
	if v == nil {
		return def
	}
	if s, ok := v.(string); ok && strings.TrimSpace(s) == "" {
		return def
	}
	return v
}
