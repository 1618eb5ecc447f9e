// Package engine turns captured events into GitLab-compatible deliveries:
// it validates events, matches them to hooks, queues one delivery per hook
// in Redis and sends each with GitLab's headers. It knows nothing of Caddy;
// the module package is the thin glue that feeds it.
package engine
