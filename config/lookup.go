package config

import (
	"reflect"
	"strings"
)

// field finds the value of a config key ("stripe.api_url") by the
// mapstructure tags that name it, so code that knows a provider's config
// keys (internal/providers) reads them without a list of providers here.
func (c *Config) field(key string) (reflect.Value, bool) {
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(key, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		found := false
		for i := 0; i < v.NumField(); i++ {
			if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("mapstructure"), ","); tag == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}, false
		}
		if v.Kind() != reflect.Struct {
			// Only the last part may name a value; "http_addr.x" is no key.
			return v, part == key[strings.LastIndex(key, ".")+1:]
		}
	}
	return v, true
}

// SecretAt is the secret set at key ("knock.api_key"); "" when unset or no
// such secret key exists. For a list of secrets (api_tokens) it is the
// first.
func (c *Config) SecretAt(key string) Secret {
	v, ok := c.field(key)
	switch {
	case !ok:
		return ""
	case v.Type() == reflect.TypeFor[Secret]():
		return v.Interface().(Secret)
	case v.Type() == reflect.TypeFor[[]Secret]() && v.Len() > 0:
		return v.Index(0).Interface().(Secret)
	}
	return ""
}

// StringAt is the string set at key ("stripe.api_url"); "" when no such
// string key exists.
func (c *Config) StringAt(key string) string {
	v, ok := c.field(key)
	if !ok || v.Kind() != reflect.String || v.Type() != reflect.TypeFor[string]() {
		return ""
	}
	return v.String()
}

// QueueLimitsAt are the queue limits set at key ("limits.knock"); the zero
// value (no limit) when no such key exists.
func (c *Config) QueueLimitsAt(key string) QueueLimitConfig {
	v, ok := c.field(key)
	if !ok || v.Type() != reflect.TypeFor[QueueLimitConfig]() {
		return QueueLimitConfig{}
	}
	return v.Interface().(QueueLimitConfig)
}
