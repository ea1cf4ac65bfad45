// lincheck: a client history for linearizability checks, recorded through etcd's own Go client (clientv3 of
// etcd 3.4), the client whose retry after a server-side DEADLINE_EXCEEDED applied a Put twice (issue 13).
//
// C clients, each its own clientv3.Client with every endpoint (clientv3's round-robin balancer; its retry
// interceptor as etcd ships it), each a goroutine doing one operation at a time for S seconds on K keys
// under a prefix, every operation under its own context.WithTimeout(--timeout):
//
//	put  Put(key, "c<client>-<seq>")                       every value written is unique in the run
//	get  linearizable Get(key)                             remembers the value read for the next cas
//	cas  Txn If(Value(key) == last value this client read or wrote) Then Put(key, new unique value);
//	     If(CreateRevision(key) == 0) when the client last saw the key absent. Without a last value: a get.
//	del  Delete(key), only with --del-pct P (that percentage of operations; the rest split as above);
//	     records the deleted count (test/support/lin checks it)
//
// The history has one record per operation (type op): its client, kind, key, the value it writes, the value
// a cas expected, the outcome, the response's header revision, what a get read (value and mod revision),
// invoke and complete times (ms since the run's start, one monotonic clock for every client) and the error.
// Outcomes: "ok" (acknowledged; for a cas: succeeded), "fail" (certainly not applied: a cas that answered
// succeeded=false) and "unknown" (any error: a write may or may not have been applied, so a checker must
// allow both). The checker (test/support/history_check.ts) compares it with the store's own history.
//
// Prints ONE JSON object (type result) on stdout, or writes it to --out. On stderr, "#phase start" when every
// client is connected and the first operations go out (a driver starts its fault schedule then), and
// clientv3's own log, its retries among it ("retrying of unary invoker failed").
//
//	go build (bench/go/build.sh), then:
//	lincheck --endpoints 127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379 [--clients 8] [--keys 4]
//	         [--prefix /lin/] [--seconds 10] [--timeout 1.5s] [--seed 1] [--out history.json]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/pkg/transport"
)

const dialTimeout = 5 * time.Second

type config struct {
	endpoints []string
	clients   int
	keys      int
	prefix    string
	seconds   float64
	timeout   time.Duration
	seed      int64
	out       string
	cacert    string
	cert      string
	key       string
	delPct    int
}

// op is one operation of the history. Value: the value a put or cas writes; Expect: the value a cas
// compared with ("" and ExpectAbsent when it required the key to be absent). Read/ReadModRev: what a get
// read (ReadFound false: the key was absent). Rev: the response header's revision (0 without a response).
type op struct {
	Client       int     `json:"client"`
	Kind         string  `json:"kind"`
	Key          string  `json:"key"`
	Value        string  `json:"value,omitempty"`
	Expect       string  `json:"expect,omitempty"`
	ExpectAbsent bool    `json:"expectAbsent,omitempty"`
	Result       string  `json:"result"`
	Rev          int64   `json:"rev"`
	Read         string  `json:"read,omitempty"`
	ReadFound    bool    `json:"readFound,omitempty"`
	ReadModRev   int64   `json:"readModRev,omitempty"`
	InvokeMs     float64 `json:"invokeMs"`
	CompleteMs   float64 `json:"completeMs"`
	Err          string  `json:"err,omitempty"`
	Deleted      *int64  `json:"deleted,omitempty"` // del: the response's deleted count
}

type result struct {
	Endpoints []string `json:"endpoints"`
	Clients   int      `json:"clients"`
	Keys      int      `json:"keys"`
	Prefix    string   `json:"prefix"`
	Seconds   float64  `json:"seconds"`
	TimeoutMs float64  `json:"timeoutMs"`
	Seed      int64    `json:"seed"`
	StartUnix float64  `json:"startUnixMs"` // wall clock of the run's time 0, to line up with a fault schedule
	Ops       []op     `json:"ops"`
}

func parseFlags() config {
	var c config
	var endpoints string
	flag.StringVar(&endpoints, "endpoints", "127.0.0.1:2379", "comma-separated client endpoints host:port, given to every client")
	flag.IntVar(&c.clients, "clients", 8, "clients, each a clientv3.Client and a goroutine")
	flag.IntVar(&c.keys, "keys", 4, "keys under the prefix")
	flag.StringVar(&c.prefix, "prefix", "/lin/", "key prefix")
	flag.Float64Var(&c.seconds, "seconds", 10, "seconds of operations")
	flag.DurationVar(&c.timeout, "timeout", 1500*time.Millisecond, "deadline of each operation (context.WithTimeout)")
	flag.Int64Var(&c.seed, "seed", 1, "seed of the operation mix (client i uses seed+i)")
	flag.StringVar(&c.out, "out", "", "write the JSON here instead of stdout")
	flag.StringVar(&c.cacert, "cacert", "", "TLS: verify the server with this CA bundle (etcdctl's --cacert)")
	flag.StringVar(&c.cert, "cert", "", "TLS: client certificate (etcdctl's --cert)")
	flag.StringVar(&c.key, "key", "", "TLS: client key (etcdctl's --key)")
	flag.IntVar(&c.delPct, "del-pct", 0, "percentage of operations that are deletes (0: none, the history_check.ts workload)")
	flag.Parse()
	c.endpoints = strings.Split(endpoints, ",")
	if c.clients < 1 || c.keys < 1 || c.seconds <= 0 || c.timeout <= 0 || c.delPct < 0 || c.delPct > 100 {
		fmt.Fprintln(os.Stderr, "lincheck: --clients and --keys must be >= 1, --seconds and --timeout > 0, --del-pct 0..100")
		os.Exit(2)
	}
	return c
}

func msSince(base time.Time) float64 { return float64(time.Since(base)) / 1e6 }

// known is what a client last saw of a key: its value, or absent. A cas compares with it.
type known struct {
	value  string
	absent bool
}

// runClient does operations until stopAt and returns them in order.
func runClient(id int, cli *clientv3.Client, c config, base time.Time, stopAt time.Duration) []op {
	rng := rand.New(rand.NewSource(c.seed + int64(id)))
	last := map[string]known{}
	var ops []op
	seq := 0
	for time.Since(base) < stopAt {
		key := fmt.Sprintf("%sk%d", c.prefix, rng.Intn(c.keys))
		kind := []string{"put", "get", "cas"}[rng.Intn(3)]
		if c.delPct > 0 && rng.Intn(100) < c.delPct {
			kind = "del"
		}
		if _, ok := last[key]; kind == "cas" && !ok {
			kind = "get"
		}
		o := op{Client: id, Kind: kind, Key: key}
		if kind != "get" {
			seq++
			o.Value = fmt.Sprintf("c%d-%d", id, seq)
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		o.InvokeMs = msSince(base)
		switch kind {
		case "put":
			resp, err := cli.Put(ctx, key, o.Value)
			o.CompleteMs = msSince(base)
			if err == nil {
				o.Result, o.Rev = "ok", resp.Header.Revision
				last[key] = known{value: o.Value}
			}
			setErr(&o, err)
		case "get":
			resp, err := cli.Get(ctx, key)
			o.CompleteMs = msSince(base)
			if err == nil {
				o.Result, o.Rev = "ok", resp.Header.Revision
				if len(resp.Kvs) > 0 {
					o.Read, o.ReadFound, o.ReadModRev = string(resp.Kvs[0].Value), true, resp.Kvs[0].ModRevision
					last[key] = known{value: o.Read}
				} else {
					last[key] = known{absent: true}
				}
			}
			setErr(&o, err)
		case "del":
			resp, err := cli.Delete(ctx, key)
			o.CompleteMs = msSince(base)
			if err == nil {
				o.Result, o.Rev, o.Deleted = "ok", resp.Header.Revision, &resp.Deleted
				last[key] = known{absent: true}
			}
			setErr(&o, err)
		case "cas":
			k := last[key]
			cmp := clientv3.Compare(clientv3.Value(key), "=", k.value)
			if k.absent {
				cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
			}
			o.Expect, o.ExpectAbsent = k.value, k.absent
			resp, err := cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, o.Value)).Commit()
			o.CompleteMs = msSince(base)
			if err == nil {
				o.Rev = resp.Header.Revision
				if resp.Succeeded {
					o.Result = "ok"
					last[key] = known{value: o.Value}
				} else {
					o.Result = "fail"
					delete(last, key) // read it again before the next cas
				}
			}
			setErr(&o, err)
		}
		cancel()
		ops = append(ops, o)
	}
	return ops
}

// setErr marks an operation that failed with err as of unknown outcome: a write may still be applied.
func setErr(o *op, err error) {
	if err != nil {
		o.Result, o.Err = "unknown", err.Error()
	}
}

func main() {
	c := parseFlags()
	clients := make([]*clientv3.Client, c.clients)
	for i := range clients {
		cfg := clientv3.Config{Endpoints: c.endpoints, DialTimeout: dialTimeout}
		if c.cacert != "" || c.cert != "" {
			tlsCfg, err := transport.TLSInfo{TrustedCAFile: c.cacert, CertFile: c.cert, KeyFile: c.key}.ClientConfig()
			if err != nil {
				fmt.Fprintf(os.Stderr, "lincheck: TLS files: %v\n", err)
				os.Exit(2)
			}
			cfg.TLS = tlsCfg
		}
		cli, err := clientv3.New(cfg)
		if err != nil {
			fmt.Fprintf(os.Stderr, "lincheck: connect %v: %v\n", c.endpoints, err)
			os.Exit(1)
		}
		clients[i] = cli
	}
	fmt.Fprintln(os.Stderr, "#phase start")
	base := time.Now()
	r := result{Endpoints: c.endpoints, Clients: c.clients, Keys: c.keys, Prefix: c.prefix, Seconds: c.seconds,
		TimeoutMs: float64(c.timeout) / 1e6, Seed: c.seed, StartUnix: float64(base.UnixNano()) / 1e6}
	stopAt := time.Duration(c.seconds * float64(time.Second))
	histories := make([][]op, c.clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func(i int) { defer wg.Done(); histories[i] = runClient(i, clients[i], c, base, stopAt) }(i)
	}
	wg.Wait()
	for i, cli := range clients {
		r.Ops = append(r.Ops, histories[i]...)
		cli.Close()
	}

	out, _ := json.Marshal(r)
	if c.out == "" {
		fmt.Println(string(out))
		return
	}
	if err := os.WriteFile(c.out, out, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "lincheck: %v\n", err)
		os.Exit(1)
	}
}
