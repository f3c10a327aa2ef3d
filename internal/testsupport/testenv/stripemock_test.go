package testenv

import (
	"net/http"
	"testing"
	"time"
)

func TestStripeMock(t *testing.T) {
	url := StripeMockURL(t)
	p := stripeMock

	get := func(auth string) (int, error) {
		req, err := http.NewRequest(http.MethodGet, url+"/v1/customers", nil)
		if err != nil {
			return 0, err
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if status, err := get("Bearer sk_test_123"); err != nil || status != http.StatusOK {
		t.Fatalf("GET with a test key: %d, %v; want 200", status, err)
	}
	// Tests rely on stripe-mock refusing keys Stripe would refuse.
	if status, err := get("Bearer sk_live_123"); err != nil || status != http.StatusUnauthorized {
		t.Fatalf("GET with a live key: %d, %v; want 401", status, err)
	}
	if again := StripeMockURL(t); again != url {
		t.Fatalf("second call started another stripe-mock: %s, then %s", url, again)
	}

	stopStripeMock()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("stripe-mock still running after stop")
	}
	if _, err := get("Bearer sk_test_123"); err == nil {
		t.Fatal("stripe-mock still answers after stop")
	}
}
