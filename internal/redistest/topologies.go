package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters without replicas.
type Cluster struct {
	Nodes []*Server
	// URL is a cluster URL for go-redis's ParseClusterURL: the first node,
	// the others as ?addr=.
	URL string
}

// StartCluster starts n cluster-enabled redis-servers (with AOF, so a
// restarted node keeps its data), joins them with redis-cli --cluster
// create and waits until the cluster is ok.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	c := &Cluster{}
	var addrs, extra []string
	for range n {
		s := Start(tb, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000", "--appendonly", "yes", "--appendfsync", "always")
		c.Nodes = append(c.Nodes, s)
		addrs = append(addrs, s.Addr)
	}
	for _, a := range addrs[1:] {
		extra = append(extra, "addr="+a)
	}
	c.URL = "redis://" + addrs[0] + "?" + strings.Join(extra, "&")
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitOK(tb)
	return c
}

// WaitOK waits until every node reports cluster_state:ok.
func (c *Cluster) WaitOK(tb testing.TB) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range c.Nodes {
		cl := s.Client()
		for {
			info, err := cl.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				cl.Close()
				tb.Fatalf("cluster node %s not ok: %v %s", s.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cl.Close()
	}
}

// NodeFor returns the node serving key's slot.
func (c *Cluster) NodeFor(tb testing.TB, key string) *Server {
	tb.Helper()
	cl := c.Nodes[0].Client()
	defer cl.Close()
	slot, err := cl.ClusterKeySlot(context.Background(), key).Result()
	if err != nil {
		tb.Fatal(err)
	}
	slots, err := cl.ClusterSlots(context.Background()).Result()
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range slots {
		if int64(r.Start) <= slot && slot <= int64(r.End) {
			for _, s := range c.Nodes {
				if s.Addr == r.Nodes[0].Addr {
					return s
				}
			}
		}
	}
	tb.Fatalf("no node serves slot %d", slot)
	return nil
}

// Sentinel is a master, one replica and one sentinel watching them.
type Sentinel struct {
	Master, Replica *Server
	// Addr is the sentinel's address.
	Addr string
	// URL is a failover URL for go-redis's ParseFailoverURL.
	URL string
	// MasterName is the monitored master's name.
	MasterName string

	sentinel       *exec.Cmd
	sentinelExited chan struct{}
}

// StartSentinel starts a master (with AOF), a replica of it and a
// sentinel, and waits until the sentinel knows the replica, so a failover
// can happen.
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		tb.Fatalf("redis-cli is not installed: %v", err)
	}
	st := &Sentinel{MasterName: "webhooks-test"}
	st.Master = Start(tb, "--appendonly", "yes")
	st.Replica = Start(tb, "--appendonly", "yes", "--replicaof", "127.0.0.1", strconv.Itoa(st.Master.port))
	dir := tb.TempDir()
	for try := 1; ; try++ {
		err := st.startSentinel(tb, dir)
		if err == nil {
			break
		}
		if try == portTries {
			tb.Fatalf("starting redis-sentinel: %v (%d ports tried)", err, try)
		}
		tb.Logf("starting redis-sentinel: %v; trying another port", err)
	}
	tb.Cleanup(st.stopSentinel)
	st.URL = fmt.Sprintf("redis://%s/0?master_name=%s", st.Addr, st.MasterName)
	sc := redis.NewSentinelClient(&redis.Options{Addr: st.Addr})
	defer sc.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		replicas, err := sc.Replicas(context.Background(), st.MasterName).Result()
		if err == nil && len(replicas) > 0 && replicaOnline(replicas[0]) {
			return st
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "sentinel.log"))
			tb.Fatalf("sentinel did not see the replica: %v %v\n%s", err, replicas, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startSentinel starts the sentinel on a free port and waits until its log
// says it is ready: then it is the one listening there (see launch), not
// the sentinel of another test, which may watch a master of the same name.
func (st *Sentinel) startSentinel(tb testing.TB, dir string) error {
	tb.Helper()
	port := pickPort(tb)
	st.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logPath := filepath.Join(dir, "sentinel.log")
	conf := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
logfile %s
sentinel monitor %s 127.0.0.1 %d 1
sentinel down-after-milliseconds %s 1000
sentinel failover-timeout %s 5000
`, port, dir, logPath, st.MasterName, st.Master.port, st.MasterName, st.MasterName)
	path := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	logStart := int64(0)
	if fi, err := os.Stat(logPath); err == nil {
		logStart = fi.Size()
	}
	cmd := exec.Command("redis-server", path, "--sentinel")
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting redis-sentinel: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if err := waitReady(tb, "redis-sentinel on "+st.Addr, logPath, readySentinel, logStart, exited); err != nil {
		return err
	}
	st.sentinel, st.sentinelExited = cmd, exited
	return nil
}

// Stop kills the master, the replica and the sentinel, as the end of a
// test does.
func (st *Sentinel) Stop() {
	st.Master.Stop()
	st.Replica.Stop()
	st.stopSentinel()
}

func (st *Sentinel) stopSentinel() {
	if st.sentinel == nil {
		return
	}
	_ = st.sentinel.Process.Kill()
	<-st.sentinelExited
	st.sentinel = nil
}

func replicaOnline(r map[string]string) bool {
	return r["master-link-status"] == "ok" && !strings.Contains(r["flags"], "disconnected")
}

// Failover asks the sentinel to promote the replica (a coordinated
// failover: the replica has caught up first) and waits until it serves as
// master.
func (st *Sentinel) Failover(tb testing.TB) {
	tb.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: st.Addr})
	defer sc.Close()
	ctx := context.Background()
	if err := sc.Failover(ctx, st.MasterName).Err(); err != nil {
		tb.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		addr, err := sc.GetMasterAddrByName(ctx, st.MasterName).Result()
		if err == nil && len(addr) == 2 && net.JoinHostPort(addr[0], addr[1]) == st.Replica.Addr {
			rc := st.Replica.Client()
			role, _ := rc.Do(ctx, "ROLE").Slice()
			rc.Close()
			if len(role) > 0 && role[0] == "master" {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("failover did not complete: %v %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
