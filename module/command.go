package module

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "webhooks",
		Usage: "<stats|hooks|events|dead-letters|redrive|pause|resume> [--address <admin>] [--config <file>]",
		Short: "Operates the webhooks of a running Caddy",
		Long: `
Talks to a running Caddy's admin API (admin.api.webhooks):

  stats                  queue depths (events, ready, scheduled, dead letters)
  hooks                  every hook in effect, with its health (no secrets)
  events <hook id>       the hook's recent delivery attempts
  dead-letters           deliveries given up on, with the reason
  redrive --all | <id>…  put dead letters back in the queue
  pause / resume         hold deliveries back in every instance, or let them go

The admin address is found as for 'caddy reload': --address, else the
config's admin setting (--config, --adapter), else localhost:2019.`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.PersistentFlags().String("address", "", "The address of the admin API")
			cmd.PersistentFlags().StringP("config", "c", "", "Configuration file, to find the admin address")
			cmd.PersistentFlags().StringP("adapter", "a", "", "Name of the config adapter")
			sub := func(use, short, method, path string, body func(args []string, all bool) (any, error)) *cobra.Command {
				c := &cobra.Command{Use: use, Short: short, RunE: func(c *cobra.Command, args []string) error {
					all, _ := c.Flags().GetBool("all")
					var payload any
					if body != nil {
						var err error
						if payload, err = body(args, all); err != nil {
							return err
						}
					}
					return adminCall(c, method, path, payload)
				}}
				return c
			}
			redrive := sub("redrive [--all | <id>...]", "Put dead letters back in the queue", http.MethodPost, "/webhooks/dead-letters/redrive",
				func(args []string, all bool) (any, error) {
					if all == (len(args) > 0) {
						return nil, fmt.Errorf("give dead-letter IDs or --all")
					}
					return map[string]any{"ids": args, "all": all}, nil
				})
			redrive.Flags().Bool("all", false, "Redrive every dead letter")
			cmd.AddCommand(
				sub("stats", "Show queue depths", http.MethodGet, "/webhooks/stats", nil),
				sub("hooks", "List hooks with their health", http.MethodGet, "/webhooks/hooks", nil),
				&cobra.Command{Use: "events <hook id>", Short: "Show a hook's recent delivery attempts", Args: cobra.ExactArgs(1),
					RunE: func(c *cobra.Command, args []string) error {
						return adminCall(c, http.MethodGet, "/webhooks/hooks/"+url.PathEscape(args[0])+"/events", nil)
					}},
				sub("dead-letters", "List dead letters", http.MethodGet, "/webhooks/dead-letters", nil),
				redrive,
				sub("pause", "Hold deliveries back everywhere", http.MethodPost, "/webhooks/pause", nil),
				sub("resume", "Let deliveries go again", http.MethodPost, "/webhooks/resume", nil),
			)
		},
	})
}

// adminCall sends one request to the admin API and prints its JSON answer.
func adminCall(c *cobra.Command, method, path string, payload any) error {
	address, _ := c.Flags().GetString("address")
	config, _ := c.Flags().GetString("config")
	adapter, _ := c.Flags().GetString("adapter")
	addr, err := caddycmd.DetermineAdminAPIAddress(address, nil, config, adapter)
	if err != nil {
		return fmt.Errorf("finding the admin API: %w", err)
	}
	var body io.Reader
	headers := http.Header{}
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
		headers.Set("Content-Type", "application/json")
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, path, headers, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if json.Indent(&out, raw, "", "  ") != nil {
		out.Reset()
		out.Write(raw)
	}
	_, err = fmt.Fprintln(os.Stdout, strings.TrimSpace(out.String()))
	return err
}
