package module

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "webhooks",
		Usage: "<stats|hooks|events|dead-letters|redrive|pause|resume|replay|replays|cancel-replay> [--json] [--address <admin>] [--config <file>]",
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

Output is an aligned table; --json prints the admin API's JSON instead.
The admin address is found as for 'caddy reload': --address, else the
config's admin setting (--config, --adapter), else localhost:2019.`,
		CobraFunc: func(cmd *cobra.Command) { webhooksCommands(cmd) },
	})
}

// webhooksCommands adds the subcommands of `caddy webhooks` to cmd.
func webhooksCommands(cmd *cobra.Command) {
	cmd.PersistentFlags().String("address", "", "The address of the admin API")
	cmd.PersistentFlags().StringP("config", "c", "", "Configuration file, to find the admin address")
	cmd.PersistentFlags().StringP("adapter", "a", "", "Name of the config adapter")
	cmd.PersistentFlags().Bool("json", false, "Print the admin API's JSON instead of a table")
	call := func(method, path string, payload any, table tableFunc) func(*cobra.Command) error {
		return func(c *cobra.Command) error { return run(c, method, path, payload, table) }
	}
	redrive := &cobra.Command{Use: "redrive [--all | <id>...]", Short: "Put dead letters back in the queue",
		RunE: func(c *cobra.Command, args []string) error {
			all, _ := c.Flags().GetBool("all")
			if all == (len(args) > 0) {
				return fmt.Errorf("give dead-letter IDs or --all")
			}
			return run(c, http.MethodPost, "/webhooks/dead-letters/redrive", map[string]any{"ids": args, "all": all}, redrivenTable)
		}}
	redrive.Flags().Bool("all", false, "Redrive every dead letter")
	cmd.AddCommand(
		&cobra.Command{Use: "stats", Short: "Show queue depths", Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return call(http.MethodGet, "/webhooks/stats", nil, statsTable)(c)
			}},
		&cobra.Command{Use: "hooks", Short: "List hooks with their health", Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return call(http.MethodGet, "/webhooks/hooks", nil, hooksTable)(c)
			}},
		&cobra.Command{Use: "events <hook id>", Short: "Show a hook's recent delivery attempts", Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				return run(c, http.MethodGet, "/webhooks/hooks/"+url.PathEscape(args[0])+"/events", nil, eventsTable)
			}},
		&cobra.Command{Use: "dead-letters", Short: "List dead letters", Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return call(http.MethodGet, "/webhooks/dead-letters", nil, deadLettersTable)(c)
			}},
		redrive,
		&cobra.Command{Use: "pause", Short: "Hold deliveries back everywhere", Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return call(http.MethodPost, "/webhooks/pause", nil, pausedTable)(c)
			}},
		&cobra.Command{Use: "resume", Short: "Let deliveries go again", Args: cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				return call(http.MethodPost, "/webhooks/resume", nil, pausedTable)(c)
			}},
		replayCommand(),
		&cobra.Command{Use: "replays [<id>]", Short: "List replays and their progress", Args: cobra.MaximumNArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				if len(args) == 1 {
					return run(c, http.MethodGet, "/webhooks/replays/"+url.PathEscape(args[0]), nil, replaysTable)
				}
				return run(c, http.MethodGet, "/webhooks/replays", nil, replaysTable)
			}},
		&cobra.Command{Use: "cancel-replay <id>", Short: "Stop a replay", Args: cobra.ExactArgs(1),
			RunE: func(c *cobra.Command, args []string) error {
				return run(c, http.MethodDelete, "/webhooks/replays/"+url.PathEscape(args[0]), nil, replaysTable)
			}},
	)
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
			return run(c, http.MethodPost, "/webhooks/replays", req, replayTable)
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

// run sends one request to the admin API and prints its answer: a table
// made by table, or the JSON with --json.
func run(c *cobra.Command, method, path string, payload any, table tableFunc) error {
	raw, err := adminCall(c, method, path, payload)
	if err != nil {
		return err
	}
	out := c.OutOrStdout()
	if asJSON, _ := c.Flags().GetBool("json"); asJSON {
		var b bytes.Buffer
		if json.Indent(&b, raw, "", "  ") != nil {
			b.Reset()
			b.Write(raw)
		}
		_, err := fmt.Fprintln(out, strings.TrimSpace(b.String()))
		return err
	}
	return table(out, raw)
}

// adminCall sends one request to the admin API and returns its body.
func adminCall(c *cobra.Command, method, path string, payload any) ([]byte, error) {
	address, _ := c.Flags().GetString("address")
	config, _ := c.Flags().GetString("config")
	adapter, _ := c.Flags().GetString("adapter")
	addr, err := caddycmd.DetermineAdminAPIAddress(address, nil, config, adapter)
	if err != nil {
		return nil, fmt.Errorf("finding the admin API: %w", err)
	}
	var body io.Reader
	headers := http.Header{}
	if payload != nil {
		b, err := json.Marshal(payload)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
		headers.Set("Content-Type", "application/json")
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, path, headers, body)
	if err != nil {
		return nil, adminError(err)
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// refused is how caddycmd reports an answer of 400 and more.
var refused = regexp.MustCompile(`(?s)^caddy responded with error: HTTP (\d+): (.*)$`)

// adminError turns the admin API's error answer ({"error": …}) into the
// error alone, with its status.
func adminError(err error) error {
	m := refused.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(m[2]), &e) != nil || e.Error == "" {
		return err
	}
	code, _ := strconv.Atoi(m[1])
	return errors.New(e.Error + " (" + strconv.Itoa(code) + " " + http.StatusText(code) + ")")
}
