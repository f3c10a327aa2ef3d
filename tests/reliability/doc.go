// Package reliability holds crmflow's fault-injection tests: they run the
// real `crmflow worker` and `crmflow serve` binaries as child processes
// against a real PostgreSQL and an embedded Temporal server, break things
// underneath them (SIGKILL a worker or a server mid-activity or right after
// an inbox commit, stop and restart Temporal, stop PostgreSQL or make it
// hang, flood one event, deliver events out of order, scale out and lose
// replicas) and check crmflow's one promise afterwards:
//
//	every event a provider got a 2xx for has exactly one inbox row and
//	exactly one effective side effect at the provider.
//
// The provider peers are local HTTP servers that behave like the real APIs
// where it matters here: the Knock peer answers a repeated Idempotency-Key
// with its first response and records no second effect, and Stripe is
// stripe-mock behind a recording proxy. The package has no production code;
// it is tests and their helpers only, run by `make test`.
//
// tests/ holds suites over the whole product; they may import any room.
package reliability
