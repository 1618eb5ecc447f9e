package module

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/grt-continuation/caddy-webhooks/engine"
	"github.com/grt-continuation/caddy-webhooks/spool"
)

// The shipped Prometheus rules are well formed and name only metrics the
// plugin exports: a renamed metric must not leave an alert that can never
// fire.
func TestPrometheusRulesNameExistingMetrics(t *testing.T) {
	raw, err := os.ReadFile("../docs/alerts/prometheus-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("prometheus-rules.yml: %v", err)
	}
	exported := exportedMetrics(t)
	name := regexp.MustCompile(`caddy_webhooks_[a-z0-9_]+`)
	rules := 0
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			rules++
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %+v lacks an alert name, expr, severity or summary", r)
			}
			names := name.FindAllString(r.Expr, -1)
			if len(names) == 0 {
				t.Errorf("rule %s names none of our metrics", r.Alert)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("rule %s names %s, which the plugin does not export", r.Alert, n)
				}
			}
		}
	}
	if rules < 5 {
		t.Fatalf("only %d rules", rules)
	}
}

// exportedMetrics lists the series names the engine's and the spool's
// collectors export (a histogram's _bucket, _sum and _count).
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	fq := regexp.MustCompile(`fqName: "([a-z0-9_]+)"`)
	out := map[string]bool{}
	for _, c := range append(engine.Collectors(), spool.Collectors()...) {
		_, hist := c.(prometheus.Histogram)
		if _, vec := c.(*prometheus.HistogramVec); vec {
			hist = true
		}
		ch := make(chan *prometheus.Desc, 8)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := fq.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("unreadable descriptor %s", d)
			}
			out[m[1]] = !hist
			if hist {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					out[m[1]+suffix] = true
				}
			}
		}
	}
	return out
}
