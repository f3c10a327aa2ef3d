package knock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"time"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// UsersService creates, updates and deletes Knock users.
type UsersService struct {
	client *Client
}

// IdentifyParams is what Identify sets on a user. Empty fields are left out,
// so they keep their stored value: Knock merges, it does not replace.
type IdentifyParams struct {
	// Email is the user's email address.
	Email string
	// Name is the user's display name.
	Name string
	// Properties are custom properties, sent in the same JSON object as the
	// fields above; Knock's own fields (phone_number, timezone, locale, ...)
	// may be set here too. Email and Name win over a property of the same name.
	Properties map[string]any
}

// MarshalJSON renders the one flat JSON object Knock expects, custom
// properties beside the known fields.
func (p IdentifyParams) MarshalJSON() ([]byte, error) {
	obj := make(map[string]any, len(p.Properties)+2)
	maps.Copy(obj, p.Properties)
	if p.Email != "" {
		obj["email"] = p.Email
	}
	if p.Name != "" {
		obj["name"] = p.Name
	}
	return json.Marshal(obj)
}

// User is a Knock user as Identify returns it.
type User struct {
	// ID is crmflow's identifier for the user, as given to Identify.
	ID string `json:"id"`
	// Email is the user's email address, if set.
	Email string `json:"email,omitempty"`
	// Name is the user's display name, if set.
	Name string `json:"name,omitempty"`
	// PhoneNumber is the user's phone number, if set.
	PhoneNumber string `json:"phone_number,omitempty"`
	// Avatar is a URL of the user's avatar, if set.
	Avatar string `json:"avatar,omitempty"`
	// Timezone is the user's IANA time zone, if set.
	Timezone string `json:"timezone,omitempty"`
	// CreatedAt is when the user was created in crmflow's system, if known.
	CreatedAt *time.Time `json:"created_at,omitempty"`
	// UpdatedAt is when Knock last updated the user.
	UpdatedAt time.Time `json:"updated_at"`
	// Properties holds every custom property Knock returned.
	Properties map[string]any `json:"-"`
}

// userFields are the keys of User's fields, which are not custom properties.
var userFields = []string{"__typename", "id", "email", "name", "phone_number", "avatar", "timezone", "created_at", "updated_at"}

// UnmarshalJSON reads the known fields and keeps the rest as Properties.
func (u *User) UnmarshalJSON(b []byte) error {
	type plain User // drops the method, so the fields decode normally
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("decode user: %w", err)
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return fmt.Errorf("decode user properties: %w", err)
	}
	for _, k := range userFields {
		delete(all, k)
	}
	*u = User(p)
	if len(all) > 0 {
		u.Properties = all
	}
	return nil
}

// Identify creates the user with the given id, or merges params into the
// stored user, and returns the user as Knock now holds it. In console mode the
// user is made up from params.
func (s *UsersService) Identify(ctx context.Context, id string, params IdentifyParams) (*User, error) {
	if id == "" {
		return nil, fmt.Errorf("identify user: %w: empty user id", ErrInvalidParams)
	}
	var out User
	recorded, err := s.client.api.Do(ctx, providerhttp.Request{
		Method: http.MethodPut,
		Path:   "/v1/users/" + url.PathEscape(id),
		Body:   params,
	}, &out)
	if err != nil {
		return nil, fmt.Errorf("identify user %q: %w", id, err)
	}
	if recorded {
		return &User{ID: id, Email: params.Email, Name: params.Name, Properties: maps.Clone(params.Properties)}, nil
	}
	return &out, nil
}

// Delete deletes the user with the given id and everything Knock holds of
// them (DELETE /v1/users/{id}, 204). A user Knock does not know is an error
// for which UserMissing is true; callers that delete for privacy count it
// as deleted. In console mode nothing is sent.
func (s *UsersService) Delete(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("delete user: %w: empty user id", ErrInvalidParams)
	}
	_, err := s.client.api.Do(ctx, providerhttp.Request{
		Method: http.MethodDelete,
		Path:   "/v1/users/" + url.PathEscape(id),
	}, nil)
	if err != nil {
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	return nil
}

// UserMissing reports whether err is Knock answering that the user does not
// exist: a 404 with one of Knock's API error codes. The router's 404 for a
// path it does not know ({"errors": ...}, no code) is not that: a wrong base
// URL must not make a privacy deletion look done.
func UserMissing(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound && e.Code != ""
}
