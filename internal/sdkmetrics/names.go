package sdkmetrics

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// kind is the SDK instrument a family was created for; it fixes the
// Prometheus type and the name suffix.
type kind uint8

const (
	kindCounter kind = iota + 1
	kindGauge
	kindTimer
)

// String names the kind in help texts.
func (k kind) String() string {
	switch k {
	case kindCounter:
		return "counter"
	case kindGauge:
		return "gauge"
	case kindTimer:
		return "timer"
	}
	return "metric"
}

// suffix is the unit or type suffix the Prometheus conventions ask for.
func (k kind) suffix() string {
	switch k {
	case kindCounter:
		return "_total"
	case kindTimer:
		return "_seconds"
	}
	return ""
}

// metricName maps an SDK metric name to its Prometheus family name.
func metricName(namespace, name string, k kind) string {
	n := sanitizeName(name)
	if namespace != "" {
		n = namespace + "_" + n
	}
	if s := k.suffix(); !strings.HasSuffix(n, s) {
		n += s
	}
	return n
}

// sanitizeName keeps [a-zA-Z0-9_] and replaces anything else with "_". The
// registry would accept UTF-8 names, but the classic text format, PromQL
// without quoting and promlint (which rejects ':' outside recording rules)
// would not.
func sanitizeName(s string) string {
	if s == "" {
		return "unnamed"
	}
	var b strings.Builder
	b.Grow(len(s) + 1)
	if s[0] >= '0' && s[0] <= '9' {
		b.WriteByte('_')
	}
	for _, r := range s {
		if r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// labelName maps a tag key to a label name. Reserved names are prefixed
// rather than dropped so the tag's information survives: "__" names belong
// to Prometheus itself, and "le"/"quantile" would clash with the histogram's
// own bucket label or fail promlint on other types.
func labelName(key string) string {
	n := sanitizeName(key)
	if strings.HasPrefix(n, "__") || n == "le" || n == "quantile" {
		n = "tag_" + n
	}
	return n
}

// labelSet is a tag map in the form series are keyed and described by.
type labelSet struct {
	labels prometheus.Labels
	// key identifies the set: sorted name/value pairs joined by a byte that
	// valid UTF-8 never contains, so distinct sets never share a key.
	key string
}

// newLabelSet sanitises tags. Empty keys and values are dropped (an empty
// label is an absent one to Prometheus). When two keys sanitise to the same
// name, the key that sorts first wins, so the outcome does not depend on map
// iteration order.
func newLabelSet(tags map[string]string) labelSet {
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		if k != "" && v != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	labels := make(prometheus.Labels, len(keys))
	for _, k := range keys {
		n := labelName(k)
		if _, taken := labels[n]; taken {
			continue
		}
		// The registry rejects a whole scrape over one invalid UTF-8 value.
		labels[n] = strings.ToValidUTF8(tags[k], string(utf8.RuneError))
	}
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(0xff)
		b.WriteString(labels[n])
		b.WriteByte(0xff)
	}
	return labelSet{labels: labels, key: b.String()}
}
