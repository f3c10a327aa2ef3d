package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// The Knock peer's users: identify and delete, as UserLifecycle uses them.

// serveUser answers identify (PUT) and delete (DELETE) of a Knock user as
// Knock does: a user Knock does not know is a 404 with resource_missing.
func (p *knockPeer) serveUser(w http.ResponseWriter, r *http.Request, userID string) {
	if r.Header.Get("Authorization") != "Bearer "+knockKey {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"code":"api_key_missing","message":"no key","status":401,"type":"authentication_error"}`)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && p.failIdentify > 0:
		p.failIdentify--
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"code":"api_key_expired","message":"expired","status":401,"type":"authentication_error"}`)
	case r.Method == http.MethodPut:
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"code":"invalid_params","message":"body","status":400,"type":"invalid_request_error"}`)
			return
		}
		u := p.users[userID]
		if u == nil {
			u = map[string]any{"__typename": "User", "id": userID}
			p.users[userID] = u
		}
		for k, v := range body {
			u[k] = v
		}
		u["updated_at"] = time.Now().UTC().Format(time.RFC3339)
		p.identified[userID] = append(p.identified[userID], body)
		_ = json.NewEncoder(w).Encode(u)
	case r.Method == http.MethodDelete:
		if _, ok := p.users[userID]; !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"code":"resource_missing","message":"The resource you requested does not exist","status":404,"type":"invalid_request_error"}`)
			return
		}
		delete(p.users, userID)
		p.userDeletes[userID]++
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, `{"errors":{"detail":"404 Not Found"}}`, http.StatusNotFound)
	}
}

// user is the Knock user as the peer holds it, nil when it has none.
func (p *knockPeer) user(id string) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	if u := p.users[id]; u != nil {
		out := map[string]any{}
		for k, v := range u {
			out[k] = v
		}
		return out
	}
	return nil
}

// identifies returns the identify bodies received for a user, in order.
func (p *knockPeer) identifies(id string) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]map[string]any(nil), p.identified[id]...)
}

// deletedUser counts the successful deletions of a user.
func (p *knockPeer) deletedUser(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.userDeletes[id]
}
