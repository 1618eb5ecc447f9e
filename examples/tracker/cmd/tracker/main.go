// Command tracker serves examples/tracker, a REST service for issues and
// merge requests that knows nothing of webhooks.
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/grt-continuation/caddy-webhooks/examples/tracker"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:3001", "address to listen on")
	flag.Parse()
	srv := &http.Server{Addr: *listen, Handler: tracker.New(), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("tracker listening on %s", *listen)
	log.Fatal(srv.ListenAndServe())
}
