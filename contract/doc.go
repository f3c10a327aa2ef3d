// Package contract is everything another program needs to talk to crmflow's
// workflows: the task queues, workflow type names, workflow-ID builders,
// signal, update and query names with their payloads, workflow inputs and
// results, search-attribute keys and business-key validation.
//
// It is the one place these names live: workflows, activities, starter, the
// inbox, the HTTP API and the CLI import it, and a Go service that starts
// crmflow's workflows imports it (through starter) without pulling in
// crmflow's infrastructure. It must import nothing but the standard library
// and Temporal's SDK and API types (a test in docs/architecture_test.go
// enforces it). Every name and JSON field here is on the wire: recorded
// histories and other programs depend on them, so they never change; a new
// field is snake_case, and a rename adds a field beside the old one
// (docs/contract.md).
package contract
