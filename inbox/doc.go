// Package inbox is crmflow's transactional inbox: every accepted webhook
// event and start-API stock update is committed here before its sender gets
// an answer, and a dispatcher hands each row to Temporal (start or
// SignalWithStart through starter), in commit order per target, at least
// once; workflows drop an event ID they have seen, so the effect is once.
//
// One file per event source (stripe.go, clerk.go, stock.go) holds both ends
// of that source: what the edge works out about a verified event (its
// Route, decided once and stored with the row) and how the dispatcher
// delivers it. ingest.go is the shared batched commit, store.go the SQL of
// the webhook_inbox table, dispatcher.go the hand-off loop, admin.go what
// operators list and replay, counts.go the rows-by-status metric.
//
// The inbox may import contract, starter (its way to Temporal), config and
// internal/ libraries; never webhooks, api, worker, workflows or activities.
package inbox
