package workflows_test

import "go.temporal.io/sdk/client"

// clientStartOptions gives the test run the workflow ID the starter would.
func clientStartOptions(id string) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: id}
}
