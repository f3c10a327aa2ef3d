package api

import (
	"errors"
	"net/http"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/starter"
)

// startReferralReward: POST /v1/referrals/{referralID}/reward, for
// backfills: starts (or joins) the reward for the referred customer's first
// paid order; 409 reward_closed once the reward finished.
func (a *API) startReferralReward(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("referralID")
	if err := contract.ValidateKey("referral ID", id); err != nil {
		httpserver.WriteError(w, http.StatusBadRequest, "invalid_referral_id", err.Error())
		return
	}
	t, err := a.deps.Store.BackfillTarget(r.Context(), id)
	if errors.Is(err, store.ErrConflict) {
		httpserver.WriteError(w, http.StatusConflict, "no_paid_order", "the referred customer has no paid order yet")
		return
	}
	if err != nil {
		a.storeError(w, err)
		return
	}
	run, err := a.deps.Starter.StartReferralReward(r.Context(), contract.ReferralRewardInput{
		ReferralID: id, OrderID: t.OrderID, ReferredCustomerID: t.ReferredCustomerID,
	})
	if errors.Is(err, starter.ErrAlreadyDone) {
		closedRun(w, "reward_closed", "the reward of referral "+id+" has finished; a referral is rewarded once at most", run)
		return
	}
	if err != nil {
		a.starterError(w, err)
		return
	}
	httpserver.WriteJSON(w, http.StatusAccepted, run)
}
