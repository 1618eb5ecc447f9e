package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os/exec"
	"strings"
	"time"
)

// startCluster starts n cluster-enabled redis-servers on loopback and joins
// them as masters without replicas, as internal/redistest does for tests.
func startCluster(dir string, n int) ([]*redisProc, error) {
	var nodes []*redisProc
	stopAll := func() {
		for _, p := range nodes {
			p.stop()
		}
	}
	addrs := []string{"--cluster", "create"}
	for i := range n {
		p, err := startRedisNamed(dir, fmt.Sprintf("cluster-%d", i), false,
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		if err != nil {
			stopAll()
			return nil, err
		}
		nodes = append(nodes, p)
		addrs = append(addrs, p.addr())
	}
	out, err := exec.Command("redis-cli", append(addrs, "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		stopAll()
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	var last string
	ok := waitFor(20*time.Second, func() bool {
		for _, p := range nodes {
			info, err := p.rdb.ClusterInfo(context.Background()).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				last = fmt.Sprintf("node %s: %v %q", p.addr(), err, firstLine(info, "cluster_state:"))
				return false
			}
		}
		return true
	})
	if !ok {
		stopAll()
		return nil, fmt.Errorf("the cluster was not ok within 20s: %s", last)
	}
	return nodes, nil
}

// clusterSpread is scenario 10: a delivery load (events at a steady rate
// through the capture path, one hook) on a 3-master Redis Cluster, and
// each master's share of the commands (INFO commandstats, in-script
// commands included) and of Redis CPU.
func (b *bench) clusterSpread() error {
	rate, dur := 500, 10*time.Second
	if b.o.smoke {
		rate, dur = 100, time.Second
	}
	nodes, err := startCluster(b.dir, 3)
	if err != nil {
		return err
	}
	defer func() {
		for _, p := range nodes {
			p.stop()
		}
	}()
	url := "cluster redis://" + nodes[0].addr()
	for _, p := range nodes[1:] {
		url += "&addr=" + p.addr()
	}
	url = strings.Replace(url, "&", "?", 1)
	shards := max(b.o.clusterShards, 1)
	if err := b.startCaddyOn("cluster", url, fastHooks(1), fmt.Sprintf("shards %d", shards)); err != nil {
		return err
	}
	defer b.stopCaddy()
	ctx := context.Background()
	client := newClient(64)
	events := b.candURL("/event")
	b.rcv.reset()
	warm := openLoop(client, http.MethodPost, events, nil, rate, min(2*time.Second, dur))
	b.errs += warm.errs
	waitFor(time.Minute, func() bool { return b.rcv.count.Load() >= warm.n })

	shares := make([][]float64, len(nodes))
	cpuShares := make([][]float64, len(nodes))
	var maxShare []float64
	last := make([]redisStats, len(nodes))
	var lastEvents int64
	for r := 0; r < b.o.rounds; r++ {
		s0 := make([]redisStats, len(nodes))
		for i, p := range nodes {
			if s0[i], err = p.stats(ctx); err != nil {
				return err
			}
		}
		b.rcv.reset()
		res := openLoop(client, http.MethodPost, events, nil, rate, dur)
		b.errs += res.errs
		if !waitFor(time.Minute, func() bool { return b.rcv.count.Load() >= res.n }) {
			b.errs += res.n - b.rcv.count.Load()
			b.note("scenario 10: %d of %d deliveries arrived within a minute of the end", b.rcv.count.Load(), res.n)
		}
		time.Sleep(500 * time.Millisecond) // the last settles trail the arrivals
		cmds := make([]float64, len(nodes))
		cpus := make([]float64, len(nodes))
		var total, totalCPU float64
		for i, p := range nodes {
			s1, err := p.stats(ctx)
			if err != nil {
				return err
			}
			d := s1.delta(s0[i])
			last[i] = d
			cmds[i], cpus[i] = float64(d.total()), d.cpu
			total += cmds[i]
			totalCPU += cpus[i]
		}
		top := 0.0
		for i := range nodes {
			shares[i] = append(shares[i], 100*cmds[i]/total)
			cpuShares[i] = append(cpuShares[i], 100*cpus[i]/math.Max(totalCPU, 1e-9))
			top = math.Max(top, shares[i][r])
		}
		maxShare = append(maxShare, top)
		lastEvents = max(res.n, 1)
		logf("scenario 10 round %d: %d events, commands per master %v, load %s", r+1, res.n, cmds, loadAvg())
	}
	tags := b.slotOwners(ctx, nodes, hashTags(shards)...)
	for i := range nodes {
		b.addZeroOK("10", fmt.Sprintf("cluster, %d shards, %d events/s × %s: master %d (holds %s): %% of commands", shards, rate, dur, i+1, orNone(tags[i])),
			math.NaN(), median(shares[i]), "", nil)
		b.addZeroOK("10", fmt.Sprintf("cluster: master %d: %% of Redis CPU", i+1), math.NaN(), median(cpuShares[i]), "", nil)
	}
	for i := range nodes {
		b.note("scenario 10, master %d, commands per event (last round): %s", i+1, breakdown(last[i], lastEvents))
	}
	b.add("10", "cluster: largest share of commands on one master, %", math.NaN(), median(maxShare), "≤ 50 % (v2 layout)",
		func(r row) bool { return r.cand <= 50 })
	return nil
}

// slotOwners tells, per node, which of the hash tags its slots hold
// (compactTags).
func (b *bench) slotOwners(ctx context.Context, nodes []*redisProc, tags ...string) []string {
	held := make([][]string, len(nodes))
	if slots, err := nodes[0].rdb.ClusterSlots(ctx).Result(); err == nil {
		for _, tag := range tags {
			slot, err := nodes[0].rdb.ClusterKeySlot(ctx, tag).Result()
			if err != nil {
				continue
			}
			for _, s := range slots {
				if int64(s.Start) > slot || slot > int64(s.End) || len(s.Nodes) == 0 {
					continue
				}
				for i, p := range nodes {
					if s.Nodes[0].Addr == p.addr() {
						held[i] = append(held[i], tag)
					}
				}
			}
		}
	}
	out := make([]string, len(nodes))
	for i := range out {
		out[i] = compactTags(held[i])
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none of the tags"
	}
	return s
}

// firstLine is the first line of s that starts with prefix ("" if none).
func firstLine(s, prefix string) string {
	for _, l := range splitLines(s) {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
