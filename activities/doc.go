// Package activities holds crmflow's Temporal activities: the code the
// workflows run to act on the world (Stripe, Knock, SimpleLogin, Resend, the
// CRM's PostgreSQL database and the credential store).
//
// Activities are methods on structs whose fields are injected clients. A
// struct that needs a store declares, next to itself, a small interface of
// the methods it calls (orderStore, aliasStore, ...): it depends on what it
// uses, not on the whole store, and the worker still hands it the one
// *store.Store. Every error an activity returns is classified at this edge:
// retryable (network, 5xx, 429, timeouts) or a non-retryable application
// error with a stable type name that workflows and operators can rely on
// (errors.go).
//
// One file per provider or store concern. A provider whose SDK glue is large
// keeps it in <provider>_client.go (client building, error classification)
// beside <provider>.go (the activities and their inputs); keys.go holds
// KeySource, through which every rotating provider key is read, and the type
// that keeps a key from printing.
//
// Method names and input/output structs are recorded in workflow histories:
// renaming one, or a field of one, breaks running workflows.
//
// Imports: the contract package, the internal/ libraries (store, credentials,
// the provider clients) and the providers' SDKs; config is not needed, since
// the worker turns configuration into the fields it injects. Never workflows,
// starter, webhooks, worker or cmd: workflows and worker import this package,
// so an arrow back would be a cycle, and the others sit above it.
package activities
