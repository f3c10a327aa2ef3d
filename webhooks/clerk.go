package webhooks

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"github.com/crmflow/crmflow/inbox"
)

// clerk verifies a Clerk delivery (signed by Svix) and commits it to the
// inbox; the dispatcher signals the user's entity (UserLifecycle).
//
// The signature is checked with Svix's own library; the timestamp with the
// configured tolerance (default 5 minutes, as Svix's), because the library's
// own tolerance cannot be configured. The signature, the timestamp and the
// event id are all read from one header set (see svixHeaderSet).
func (h *Handler) clerk(w http.ResponseWriter, r *http.Request) {
	const provider = inbox.SourceClerk
	body, ok := h.readBody(w, r, provider)
	if !ok {
		return
	}
	verifiers, err := h.clerkVerifiers(r.Context())
	if err != nil {
		h.unavailable(w, provider, "", err)
		return
	}
	if len(verifiers) == 0 {
		h.reject(w, provider, rejection{http.StatusBadRequest, "bad_signature", "no Clerk webhook secret is configured"})
		return
	}
	set, problem := svixHeaderSet(r.Header)
	if problem != "" {
		h.reject(w, provider, rejection{http.StatusBadRequest, "bad_signature", problem})
		return
	}
	// svix is handed a header map holding this one set only, so the set it
	// verifies is the set whose timestamp and id crmflow uses below.
	verified := false
	for _, v := range verifiers {
		if v.VerifyIgnoringTimestamp(body, set.header()) == nil {
			verified = true
			break
		}
	}
	if !verified {
		h.reject(w, provider, rejection{http.StatusBadRequest, "bad_signature", "Svix signature does not verify"})
		return
	}
	ts, err := strconv.ParseInt(set.timestamp, 10, 64)
	if err != nil {
		h.reject(w, provider, rejection{http.StatusBadRequest, "bad_signature", set.prefix + "timestamp is not a Unix time"})
		return
	}
	if age := time.Since(time.Unix(ts, 0)); age > h.deps.Options.Tolerance || -age > h.deps.Options.Tolerance {
		h.reject(w, provider, rejection{http.StatusBadRequest, "stale_timestamp", "signature timestamp is outside the tolerance"})
		return
	}
	h.prove(r.Context(), "clerk_webhook", func(secret string) bool {
		v := newClerkVerifier(secret)
		return v != nil && v.VerifyIgnoringTimestamp(body, set.header()) == nil
	})
	row, err := inbox.ClerkEvent(set.id, body)
	if errors.Is(err, inbox.ErrMalformed) {
		h.reject(w, provider, rejection{http.StatusBadRequest, "malformed", "body is not a Clerk event"})
		return
	}
	h.accept(w, r, row)
}

// svixSet is one Svix header set: Svix's own names (svix-id,
// svix-timestamp, svix-signature) or Standard Webhooks' (webhook-id,
// webhook-timestamp, webhook-signature) for the same three values.
type svixSet struct {
	prefix                   string
	id, timestamp, signature string
}

// complete reports whether the set has all three values: a set with a
// member missing is no set.
func (s svixSet) complete() bool { return s.id != "" && s.timestamp != "" && s.signature != "" }

// disagrees reports whether two sets give different values for a header
// both carry.
func (s svixSet) disagrees(o svixSet) bool {
	differ := func(a, b string) bool { return a != "" && b != "" && a != b }
	return differ(s.id, o.id) || differ(s.timestamp, o.timestamp) || differ(s.signature, o.signature)
}

// header is the set alone, under the names svix reads first.
func (s svixSet) header() http.Header {
	return http.Header{
		"Svix-Id":        {s.id},
		"Svix-Timestamp": {s.timestamp},
		"Svix-Signature": {s.signature},
	}
}

// readSvixSet reads the set under prefix; a header given more than once is
// refused, as it is ambiguous which one was signed.
func readSvixSet(hd http.Header, prefix string) (svixSet, string) {
	var v [3]string
	for i, name := range []string{"id", "timestamp", "signature"} {
		switch vs := hd.Values(prefix + name); len(vs) {
		case 0:
		case 1:
			v[i] = vs[0]
		default:
			return svixSet{}, prefix + name + " is given more than once"
		}
	}
	return svixSet{prefix: prefix, id: v[0], timestamp: v[1], signature: v[2]}, ""
}

// svixHeaderSet picks the one header set a Clerk delivery is verified, timed
// and identified by, or says why there is none.
//
// svix's library verifies the webhook-* set whenever any svix-* header is
// empty. Had crmflow read the timestamp and id header by header, a captured
// delivery resent with its webhook-* set plus a fresh svix-id and
// svix-timestamp (and no svix-signature) would verify and pass as a new,
// fresh event. So a set counts only when it is complete, the svix-* set
// wins when both are, and a request whose two sets disagree in any header
// both carry is refused: no sender of genuine deliveries does that.
func svixHeaderSet(hd http.Header) (svixSet, string) {
	svixNames, problem := readSvixSet(hd, "svix-")
	if problem != "" {
		return svixSet{}, problem
	}
	standard, problem := readSvixSet(hd, "webhook-")
	switch {
	case problem != "":
		return svixSet{}, problem
	case svixNames.disagrees(standard):
		return svixSet{}, "svix-* and webhook-* headers disagree"
	case svixNames.complete():
		return svixNames, ""
	case standard.complete():
		return standard, ""
	}
	return svixSet{}, "no complete set of svix-id, svix-timestamp and svix-signature (or webhook-*) headers"
}

// clerkVerifiers are the Svix verifiers of the secrets valid now.
func (h *Handler) clerkVerifiers(ctx context.Context) ([]*svix.Webhook, error) {
	secrets, err := h.secrets(ctx, "clerk_webhook", h.deps.Options.ClerkSecret)
	if err != nil {
		return nil, err
	}
	var out []*svix.Webhook
	for _, secret := range secrets {
		if v := newClerkVerifier(secret); v != nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// newClerkVerifier builds the Svix verifier, or nil when no usable secret is
// configured: then every delivery is rejected rather than accepted unsigned.
func newClerkVerifier(secret string) *svix.Webhook {
	if secret == "" {
		return nil
	}
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		// Config validation rejects such a secret before we get here.
		return nil
	}
	return wh
}
