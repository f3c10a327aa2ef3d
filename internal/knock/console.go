package knock

import "github.com/crmflow/crmflow/internal/providerhttp"

// Call is a request a console client would have sent to Knock. It carries no
// credential; Provider is "knock".
type Call = providerhttp.Call

// Recorder receives the calls of a console client. An error from Record fails
// the call, so a recorder that stores calls can make the caller retry.
type Recorder = providerhttp.Recorder

// LogRecorder logs each call at info level ("CONSOLE MODE knock: would
// send"), so a developer without a Knock key sees what would have been sent.
type LogRecorder = providerhttp.LogRecorder
