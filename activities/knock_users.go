package activities

import (
	"context"
	"strings"

	"go.temporal.io/sdk/activity"

	"github.com/crmflow/crmflow/internal/knock"
	"github.com/crmflow/crmflow/internal/providerhttp"
)

// IdentifyUserInput is what Knock should hold of a user.
type IdentifyUserInput struct {
	// UserID is the Knock user id: the Clerk user id, as every other Knock
	// call of crmflow names its recipients.
	UserID string `json:"user_id"`
	// Email and Name are sent when set; Knock merges, so an empty one keeps
	// the value Knock has.
	Email string `json:"email"`
	Name  string `json:"name"`
}

// KnockUserOutput is what became of a Knock user.
type KnockUserOutput struct {
	// Missing is true when a user to delete was already gone at Knock.
	Missing bool `json:"missing,omitempty"`
}

// IdentifyUser creates or updates the user at Knock (PUT /v1/users/{id}).
// Knock takes no idempotency key here, and needs none: the PUT sets the
// same properties again on a retry.
func (a *KnockActivities) IdentifyUser(ctx context.Context, in IdentifyUserInput) (*KnockUserOutput, error) {
	if strings.TrimSpace(in.UserID) == "" {
		return nil, invalidKnockInput("user id is empty")
	}
	u, err := a.Knock.Users.Identify(ctx, in.UserID, knock.IdentifyParams{Email: in.Email, Name: in.Name})
	if err != nil {
		return nil, classified(providerKnock, providerhttp.Classify(err), err)
	}
	activity.GetLogger(ctx).Info("knock: user identified", "userID", u.ID)
	return &KnockUserOutput{}, nil
}

// DeleteUserInput names the Knock user to delete.
type DeleteUserInput struct {
	UserID string `json:"user_id"`
}

// DeleteUser deletes the user and what Knock holds of them (DELETE
// /v1/users/{id}). A user Knock does not know (never identified, or deleted
// by an earlier attempt whose answer was lost) counts as deleted; the
// router's 404 of a wrong base URL does not.
func (a *KnockActivities) DeleteUser(ctx context.Context, in DeleteUserInput) (*KnockUserOutput, error) {
	if strings.TrimSpace(in.UserID) == "" {
		return nil, invalidKnockInput("user id is empty")
	}
	err := a.Knock.Users.Delete(ctx, in.UserID)
	missing := knock.UserMissing(err)
	if err != nil && !missing {
		return nil, classified(providerKnock, providerhttp.Classify(err), err)
	}
	activity.GetLogger(ctx).Info("knock: user deleted", "userID", in.UserID, "alreadyGone", missing)
	return &KnockUserOutput{Missing: missing}, nil
}
