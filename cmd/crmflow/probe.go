package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// newProbeCmd is a container health check for images with no curl: it exits 0
// only when the URL answers 200.
func newProbeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "probe <url>",
		Short: "Exit 0 if the URL answers 200 (container health checks)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := &http.Client{Timeout: 5 * time.Second}
			resp, err := c.Get(args[0])
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s answered %s", args[0], resp.Status)
			}
			return nil
		},
	}
}
