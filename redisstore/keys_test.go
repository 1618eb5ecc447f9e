package redisstore

import "testing"

// Redis Cluster's key hash (CRC-16/XMODEM): its check value, and a key
// with a hash tag hashing as the tag alone.
func TestCRC16IsRedisClusterKeySlot(t *testing.T) {
	if got := crc16("123456789"); got != 0x31C3 {
		t.Fatalf("crc16 check value = %#x, want 0x31c3", got)
	}
}

// The first N shard tags spread over the slot ranges of a cluster whose
// masters hold even ranges: no master gets much more than its share.
func TestShardTagsSpreadOverMasters(t *testing.T) {
	for _, masters := range []int{2, 3, 4, 6} {
		for _, n := range []int{masters, 2 * masters, 12, 16, 32, 64} {
			count := make([]int, masters)
			for i := range n {
				count[int(crc16(ShardTag(i))%16384)*masters/16384]++
			}
			most := 0
			for _, c := range count {
				most = max(most, c)
			}
			// Evenly spaced points give each range its share, give or take one.
			if share := (n + masters - 1) / masters; most > share+1 {
				t.Errorf("%d shards on %d masters: %v per master, want at most %d", n, masters, count, share+1)
			}
		}
	}
	seen := map[string]bool{}
	for i := range MaxShards {
		if seen[ShardTag(i)] {
			t.Fatalf("tag %s twice", ShardTag(i))
		}
		seen[ShardTag(i)] = true
	}
}
