// Package webhook holds the domain records every part of the engine shares:
// the captured Event (and its validation), the Delivery of an event to one
// hook, and the Hook itself with its index by scope. It imports neither
// Redis nor Caddy, so the spool, the page and the API can use these records
// without linking either.
package webhook
