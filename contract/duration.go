package contract

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads a duration the way a workflow input may spell it as a
// JSON string: a Go duration ("24h", "1h30m", "90s", "-1h") or an ISO 8601
// duration ("PT24H", "P14D", "P2W", "P1DT12H", "PT0.5S"). ISO years and
// months are refused: they have no fixed length. A day is 24 hours.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if s[0] == 'P' || s[0] == 'p' {
		return parseISODuration(strings.ToUpper(s))
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: use integer nanoseconds, a Go duration (\"24h\", \"90m\") or ISO 8601 (\"PT24H\", \"P14D\")", s)
	}
	return d, nil
}

// isoUnits are the ISO 8601 designators ParseDuration takes, before and
// after the T.
var (
	isoDateUnits = map[byte]time.Duration{'W': 7 * 24 * time.Hour, 'D': 24 * time.Hour}
	isoTimeUnits = map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second}
)

// parseISODuration reads PnWnDTnHnMnS (s upper-cased), each part optional
// but at least one present, in that order, a decimal fraction ("." or ",")
// allowed on any of them; the sum is computed exactly in nanoseconds.
func parseISODuration(s string) (time.Duration, error) {
	bad := func(why string) (time.Duration, error) {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration: %s", s, why)
	}
	rest := s[1:]
	if rest == "" || rest == "T" {
		return bad("no value")
	}
	var total int64
	units, order, inTime := isoDateUnits, "WD", false
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return bad("two T separators")
			}
			inTime, units, order, rest = true, isoTimeUnits, "HMS", rest[1:]
			if rest == "" {
				return bad("nothing after T")
			}
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.' || rest[i] == ',') {
			i++
		}
		if i == len(rest) {
			return bad(fmt.Sprintf("%q has no unit", rest))
		}
		num, unit := rest[:i], rest[i]
		if !inTime && (unit == 'Y' || unit == 'M') {
			return bad("years and months have no fixed length; use weeks (W) or days (D)")
		}
		size, ok := units[unit]
		pos := strings.IndexByte(order, unit)
		if !ok || pos < 0 {
			return bad(fmt.Sprintf("unexpected %q", string(unit)))
		}
		if num == "" {
			return bad(fmt.Sprintf("no number before %q", string(unit)))
		}
		n, err := isoPart(num, size)
		if err != nil {
			return bad(err.Error())
		}
		if total > math.MaxInt64-n {
			return bad("too long")
		}
		total += n
		order = order[pos+1:] // each unit once, biggest first
		rest = rest[i+1:]
	}
	return time.Duration(total), nil
}

// isoPart is num units of size in nanoseconds: num is digits with an
// optional fraction; what the fraction adds below a nanosecond is dropped.
func isoPart(num string, size time.Duration) (int64, error) {
	whole, frac, _ := strings.Cut(strings.ReplaceAll(num, ",", "."), ".")
	if whole == "" && frac == "" || strings.Contains(frac, ".") {
		return 0, fmt.Errorf("%q is not a number", num)
	}
	var n int64
	if whole != "" {
		w, err := strconv.ParseInt(whole, 10, 64)
		if err != nil || w > math.MaxInt64/int64(size) {
			return 0, errors.New("too long")
		}
		n = w * int64(size)
	}
	// The fraction: digit by digit, each worth a tenth of the one before.
	scale := int64(size)
	for _, c := range frac {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a number", num)
		}
		scale /= 10
		n += int64(c-'0') * scale
	}
	if n < 0 {
		return 0, errors.New("too long")
	}
	return n, nil
}

var durationType = reflect.TypeFor[time.Duration]()

// unmarshalWithDurations decodes data into v, a pointer to a struct with no
// UnmarshalJSON of its own (the caller's method passes a plain twin of its
// type), reading each of the struct's time.Duration fields from integer
// nanoseconds, as encoding/json does and every Go client sends, or from a
// string ParseDuration takes, as other languages write durations. Output is
// untouched: durations still marshal as nanoseconds, so recorded histories
// read back the same.
func unmarshalWithDurations(data []byte, v any) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return json.Unmarshal(data, v) // not an object (or null): encoding/json says what is wrong
	}
	typ := reflect.TypeOf(v).Elem()
	changed := false
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type != durationType || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		for key, raw := range fields {
			// encoding/json matches field names case-insensitively too.
			if !strings.EqualFold(key, name) || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte(`"`)) {
				continue
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			d, err := ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fields[key] = json.RawMessage(strconv.FormatInt(int64(d), 10))
			changed = true
		}
	}
	if changed {
		var err error
		if data, err = json.Marshal(fields); err != nil {
			return err
		}
	}
	return json.Unmarshal(data, v)
}

// UnmarshalJSON reads PaymentTimeout from nanoseconds or a duration string
// (see ParseDuration).
func (in *OrderConfirmationInput) UnmarshalJSON(data []byte) error {
	type plain OrderConfirmationInput
	return unmarshalWithDurations(data, (*plain)(in))
}

// UnmarshalJSON reads ShadowTTL from nanoseconds or a duration string (see
// ParseDuration).
func (in *AliasLifecycleInput) UnmarshalJSON(data []byte) error {
	type plain AliasLifecycleInput
	return unmarshalWithDurations(data, (*plain)(in))
}

// UnmarshalJSON reads Grace and ReminderEvery from nanoseconds or duration
// strings (see ParseDuration).
func (in *KeyRotationInput) UnmarshalJSON(data []byte) error {
	type plain KeyRotationInput
	return unmarshalWithDurations(data, (*plain)(in))
}

// UnmarshalJSON reads the retention windows from nanoseconds or duration
// strings (see ParseDuration).
func (in *DataRetentionInput) UnmarshalJSON(data []byte) error {
	type plain DataRetentionInput
	return unmarshalWithDurations(data, (*plain)(in))
}

// UnmarshalJSON reads Overlap and Settle from nanoseconds or duration
// strings (see ParseDuration).
func (in *StripeReconcileInput) UnmarshalJSON(data []byte) error {
	type plain StripeReconcileInput
	return unmarshalWithDurations(data, (*plain)(in))
}
