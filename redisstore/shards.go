package redisstore

import (
	"hash/fnv"
	"strconv"
)

// The hash tags of the shards ("q<i>.<n>") and hook slots ("hs<j>.<n>"):
// n is the first number that puts tag i near the i-th point of a van der
// Corput sequence over Redis Cluster's 16384 slots. So the first N tags,
// for any N, are spread evenly over the slot range, and a Cluster whose
// masters hold even slot ranges gets an even share of the shards (plain
// "q0"…"q15" put 8 of 16 on one master of three).
var shardTags, hookTags = spreadTags("q", MaxShards), spreadTags("hs", HookSlots)

func spreadTags(prefix string, n int) []string {
	const slots, window = 16384, 64
	tags := make([]string, n)
	for i := range tags {
		target := int(vanDerCorput(uint32(i))*slots) + window/2
		for k := 0; ; k++ {
			t := prefix + strconv.Itoa(i) + "." + strconv.Itoa(k)
			if slot := int(crc16(t)) % slots; slot >= target-window/2 && slot < target+window/2 {
				tags[i] = t
				break
			}
		}
	}
	return tags
}

// vanDerCorput is the base-2 radical inverse of i, in [0, 1).
func vanDerCorput(i uint32) float64 {
	var r float64
	for f := 0.5; i > 0; i, f = i>>1, f/2 {
		if i&1 == 1 {
			r += f
		}
	}
	return r
}

// crc16 is Redis Cluster's key hash (CRC-16/XMODEM).
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// ShardTag is the hash tag of queue shard i.
func ShardTag(i int) string { return shardTags[i] }

// HookTag is the hash tag of hook slot j.
func HookTag(j int) string { return hookTags[j] }

// ShardOf is the queue shard of a chain's events among n.
func ShardOf(chain string, n int) int {
	if n <= 1 {
		return 0
	}
	return int(hash32(chain) % uint32(n))
}

func hash32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}
