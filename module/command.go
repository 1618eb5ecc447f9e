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
		Usage: "<stats|hooks|events|dead-letters|redrive|pause|resume|replay|replays|cancel-replay> [--address <admin>] [--config <file>]",
		Short: "Operates the webhooks of a running Caddy",
		Long: `
Talks to a running Caddy's admin API (admin.api.webhooks):

  stats                  queue depths (events, ready, scheduled, dead letters)
  hooks                  every hook in effect, with its health (no secrets)
  events <hook id>       the hook's recent delivery attempts
  dead-letters           deliveries given up on, with the reason
  redrive --all | <id>…  put dead letters back in the queue
  pause / resume         hold deliveries back in every instance, or let them go
  replay --since 2h [--hook 7]… [--project p | --group g] [--until t]
         [--status failed|dead|all] [--dry-run]
                         send again what failed (default), the dead letters, or
                         every attempt of the range; --dry-run counts first
  replays [<id>]         replays and their progress
  cancel-replay <id>     stop a replay (what it queued stays queued)

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
				replayCommand(),
				&cobra.Command{Use: "replays [<id>]", Short: "List replays and their progress", Args: cobra.MaximumNArgs(1),
					RunE: func(c *cobra.Command, args []string) error {
						path := "/webhooks/replays"
						if len(args) == 1 {
							path += "/" + url.PathEscape(args[0])
						}
						return adminCall(c, http.MethodGet, path, nil)
					}},
				&cobra.Command{Use: "cancel-replay <id>", Short: "Stop a replay", Args: cobra.ExactArgs(1),
					RunE: func(c *cobra.Command, args []string) error {
						return adminCall(c, http.MethodDelete, "/webhooks/replays/"+url.PathEscape(args[0]), nil)
					}},
			)
		},
	})
}

// replayCommand is `caddy webhooks replay`: POST /webhooks/replays.
func replayCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "replay --since <time|2h> [--hook <id>]... [--project <path> | --group <path>] [--until <time|1h>] [--status failed|dead|all] [--dry-run]",
		Short: "Send again what failed, was dead-lettered, or every attempt of a time range",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			f := c.Flags()
			hooks, _ := f.GetInt64Slice("hook")
			req := map[string]any{}
			for _, name := range []string{"project", "group", "since", "until", "status"} {
				if v, _ := f.GetString(name); v != "" {
					req[name] = v
				}
			}
			if len(hooks) > 0 {
				req["hooks"] = hooks
			}
			if dry, _ := f.GetBool("dry-run"); dry {
				req["dry_run"] = true
			}
			if req["since"] == nil {
				return fmt.Errorf("--since is required: a time (RFC 3339) or how long ago (2h)")
			}
			return adminCall(c, http.MethodPost, "/webhooks/replays", req)
		},
	}
	f := c.Flags()
	f.Int64Slice("hook", nil, "Hook id (repeat, or a comma-separated list); default: every hook")
	f.String("project", "", "Only the hooks of this project (full path)")
	f.String("group", "", "Only the hooks of this group and everything below it (full path)")
	f.String("since", "", "Start of the range: a time (RFC 3339) or how long ago (2h, 30m, 1d)")
	f.String("until", "", "End of the range (default: now)")
	f.String("status", "failed", "failed (not delivered since), dead (dead letters) or all (every attempt)")
	f.Bool("dry-run", false, "Count what would be sent, send nothing")
	return c
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
