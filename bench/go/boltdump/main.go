// boltdump: reads a bbolt file with bbolt itself (Debian's go.etcd.io/bbolt, the library etcd 3.4
// opens its backend with), to check files written by etcd-ts's own writer (src/shared/bbolt/writer.ts)
// independently of it.
//
//	boltdump FILE
//
// Runs tx.Check (every page reachable once or free, page types) and prints each error as "ERR <text>";
// then walks every bucket with a cursor, depth first, and prints one line per entry:
//
//	B <bucket path>                 a bucket (path: the hex names from the top, joined by '/')
//	K <bucket path> <key> <value>   a key, hex
//
// and looks every key up again with Get (a seek through the branch pages), printing "ERR get ..." when
// the value found differs. With -etcd it also decodes the records of etcd's `key` and `lease` buckets
// with etcd's own protobuf types and prints them as
//
//	KV <rev key hex> <key hex> <create> <mod> <version> <lease> <value hex>
//	LEASE <id> <ttl> <remainingTTL>
//
// Exits 1 when any ERR line was printed.
package main

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/lease/leasepb"
	"go.etcd.io/etcd/mvcc/mvccpb"
)

var failed bool

func errorf(format string, a ...interface{}) {
	failed = true
	fmt.Printf("ERR "+format+"\n", a...)
}

func walk(b *bolt.Bucket, path []string, etcd bool) {
	p := strings.Join(path, "/")
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil {
			sub := b.Bucket(k)
			if sub == nil {
				errorf("bucket %s/%x: nil", p, k)
				continue
			}
			child := append(append([]string{}, path...), hex.EncodeToString(k))
			fmt.Printf("B %s\n", strings.Join(child, "/"))
			walk(sub, child, etcd)
			continue
		}
		fmt.Printf("K %s %x %x\n", p, k, v)
		if got := b.Get(k); !bytes.Equal(got, v) {
			errorf("get %s %x: %x, want %x", p, k, got, v)
		}
		if etcd && len(path) == 1 {
			decode(path[0], k, v)
		}
	}
}

func decode(bucket string, k, v []byte) {
	switch bucket {
	case hex.EncodeToString([]byte("key")):
		var kv mvccpb.KeyValue
		if err := kv.Unmarshal(v); err != nil {
			errorf("key %x: %v", k, err)
			return
		}
		fmt.Printf("KV %x %x %d %d %d %d %x\n", k, kv.Key, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease, kv.Value)
	case hex.EncodeToString([]byte("lease")):
		var l leasepb.Lease
		if err := l.Unmarshal(v); err != nil {
			errorf("lease %x: %v", k, err)
			return
		}
		fmt.Printf("LEASE %d %d %d\n", l.ID, l.TTL, l.RemainingTTL)
	}
}

func main() {
	etcd := flag.Bool("etcd", false, "decode etcd's key and lease buckets")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: boltdump [-etcd] FILE")
		os.Exit(2)
	}
	db, err := bolt.Open(flag.Arg(0), 0400, &bolt.Options{ReadOnly: true})
	if err != nil {
		fmt.Printf("ERR open: %v\n", err)
		os.Exit(1)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			errorf("check: %v", e)
		}
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			fmt.Printf("B %x\n", name)
			walk(b, []string{hex.EncodeToString(name)}, *etcd)
			return nil
		})
	})
	if err != nil {
		errorf("view: %v", err)
	}
	if failed {
		os.Exit(1)
	}
}
