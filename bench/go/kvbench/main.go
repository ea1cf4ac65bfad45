// kvbench: put, range and txn-put load through etcd 3.4's own Go client (clientv3), with the client model
// of etcd's tools/benchmark (which Debian's golang-etcd-server-dev does not ship), so that etcd-ts's
// throughput goals, stated "measured through the Go client", can be measured here. Written from reading
// etcd's tools/benchmark/cmd/{root,util,put,range,txn_put}.go; none of it is copied.
//
// Client model (as etcd's tool): --conns clientv3.Clients (one gRPC connection each; connection i talks to
// endpoint i mod len(--endpoints)), --clients goroutines, goroutine i using connection i mod --conns. A
// feeder goroutine sends --total requests into a channel of capacity --clients; each goroutine takes the
// next request, does it, and records its latency (call start to response). Throughput is requests / wall
// time from the first request to the last response, as etcd's report computes it.
//
//	kvbench put      [--key-size 8] [--val-size 8] [--key-space-size 1] [--sequential-keys]
//	kvbench range    [KEY] [--consistency l|s]       (KEY default "foo", before or after the flags)
//	kvbench txn-put  [--key-size 8] [--val-size 8] [--key-space-size 1] [--compare]
//	kvbench conn     [KEY] [--consistency s]         new connections per second (see below)
//	common flags:    --endpoints 127.0.0.1:2379 --conns 1 --clients 1 --total 10000
//	                 [--cacert F] [--cert F] [--key F] [--insecure-skip-tls-verify] [--dial-timeout 5s]
//
// txn-put: a Txn whose Then is one put (etcd's txn-put with --txn-ops 1) on key i mod --key-space-size;
// with --compare the Txn also has a compare (ModRevision(key) < 2^62, always true), so the server
// evaluates a compare before the put, as a compare-and-swap does.
//
// conn: each request is a whole connection: gRPC dial (TCP, and the TLS handshake when TLS flags are
// given) waiting until the connection is ready, one Range of KEY (serializable by default here, so it
// measures connection setup, not Raft), and close. --clients goroutines do this in parallel; --conns is
// unused. It uses gRPC and etcd's KV stub directly (what clientv3 does underneath) so the client's own
// balancer and endpoint bookkeeping do not eat the CPU the server needs on a small machine.
//
// range: the key is KEY (default "foo"); the runner puts it first.
//
// Prints ONE JSON object on stdout (type result). Exits 1 with a message on stderr on a bad flag or when
// the connections cannot be made; request errors are counted and the first few are listed.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	mrand "math/rand"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"go.etcd.io/etcd/pkg/transport"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

type config struct {
	op           string
	endpoints    []string
	conns        int
	clients      int
	total        int
	keySize      int
	valSize      int
	keySpaceSize int
	seqKeys      bool
	consistency  string
	key          string
	compare      bool
	tlsInfo      transport.TLSInfo
	dialTimeout  time.Duration
	reqTimeout   time.Duration
}

type result struct {
	Op          string   `json:"op"`
	Endpoints   []string `json:"endpoints"`
	Conns       int      `json:"conns"`
	Clients     int      `json:"clients"`
	Total       int      `json:"total"`
	TLS         bool     `json:"tls"`
	Consistency string   `json:"consistency,omitempty"`
	Compare     bool     `json:"compare,omitempty"`
	Ok          int      `json:"ok"`
	Errors      int      `json:"errors"`
	ErrorSample []string `json:"errorSample"`
	Seconds     float64  `json:"seconds"`
	ReqPerSec   float64  `json:"reqPerSec"`
	AvgMs       float64  `json:"avgMs"`
	P50Ms       float64  `json:"p50Ms"`
	P90Ms       float64  `json:"p90Ms"`
	P99Ms       float64  `json:"p99Ms"`
	P999Ms      float64  `json:"p999Ms"`
	MaxMs       float64  `json:"maxMs"`
	ClientCores float64  `json:"clientCores"`
	GoMaxProcs  int      `json:"gomaxprocs"`
}

const errorSampleMax = 5

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "kvbench: "+format+"\n", a...)
	os.Exit(1)
}

func parseFlags() config {
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		die("usage: kvbench put|range|txn-put|conn [flags] (see the top of bench/go/kvbench/main.go)")
	}
	var c config
	c.op = os.Args[1]
	switch c.op {
	case "put", "range", "txn-put", "conn":
	default:
		die("unknown benchmark %q: put, range, txn-put or conn", c.op)
	}
	fs := flag.NewFlagSet(c.op, flag.ExitOnError)
	var eps string
	fs.StringVar(&eps, "endpoints", "127.0.0.1:2379", "comma-separated gRPC endpoints (host:port)")
	fs.IntVar(&c.conns, "conns", 1, "gRPC connections (clientv3 clients)")
	fs.IntVar(&c.clients, "clients", 1, "concurrent request goroutines sharing the connections")
	fs.IntVar(&c.total, "total", 10000, "requests in all")
	fs.IntVar(&c.keySize, "key-size", 8, "key size (put, txn-put)")
	fs.IntVar(&c.valSize, "val-size", 8, "value size (put, txn-put)")
	fs.IntVar(&c.keySpaceSize, "key-space-size", 1, "distinct keys (put, txn-put)")
	fs.BoolVar(&c.seqKeys, "sequential-keys", false, "put: keys in order instead of at random")
	fs.StringVar(&c.consistency, "consistency", "", "range/conn: l (linearizable) or s (serializable); default l for range, s for conn")
	fs.BoolVar(&c.compare, "compare", false, "txn-put: add a compare (always true) before the put")
	fs.StringVar(&c.tlsInfo.TrustedCAFile, "cacert", "", "CA bundle to verify the server")
	fs.StringVar(&c.tlsInfo.CertFile, "cert", "", "client certificate")
	fs.StringVar(&c.tlsInfo.KeyFile, "key", "", "client key")
	fs.BoolVar(&c.tlsInfo.InsecureSkipVerify, "insecure-skip-tls-verify", false, "do not verify the server's certificate")
	fs.DurationVar(&c.dialTimeout, "dial-timeout", 5*time.Second, "connection timeout")
	fs.DurationVar(&c.reqTimeout, "request-timeout", 30*time.Second, "per-request timeout")
	args := os.Args[2:]
	c.key = "foo"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		c.key, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		die("%v", err)
	}
	if fs.NArg() == 1 && (c.op == "range" || c.op == "conn") {
		c.key = fs.Arg(0)
	} else if fs.NArg() != 0 {
		die("unexpected arguments %v", fs.Args())
	}
	for _, e := range strings.Split(eps, ",") {
		if e = strings.TrimSpace(e); e != "" {
			c.endpoints = append(c.endpoints, e)
		}
	}
	if len(c.endpoints) == 0 {
		die("--endpoints is empty")
	}
	if c.conns < 1 || c.clients < 1 || c.total < 1 || c.keySize < 1 || c.valSize < 0 || c.keySpaceSize < 1 {
		die("--conns, --clients, --total, --key-size and --key-space-size must be positive, --val-size not negative")
	}
	if need := binary.PutVarint(make([]byte, binary.MaxVarintLen64), int64(c.keySpaceSize-1)); c.keySize < need {
		// Keys are the index as a varint in a --key-size buffer, as etcd's tool makes them.
		die("--key-size %d is too short for --key-space-size %d (needs %d)", c.keySize, c.keySpaceSize, need)
	}
	if c.consistency == "" {
		c.consistency = map[bool]string{true: "s", false: "l"}[c.op == "conn"]
	}
	if c.consistency != "l" && c.consistency != "s" {
		die("--consistency must be l or s, got %q", c.consistency)
	}
	return c
}

func (c config) usesTLS() bool {
	return c.tlsInfo.TrustedCAFile != "" || c.tlsInfo.CertFile != "" || c.tlsInfo.InsecureSkipVerify
}

func (c config) tlsConfig() *tls.Config {
	if !c.usesTLS() {
		return nil
	}
	t, err := c.tlsInfo.ClientConfig()
	if err != nil {
		die("bad TLS files: %v", err)
	}
	return t
}

// newClient makes connection i (endpoint i mod len(endpoints)) and waits until it is ready.
func newClient(c config, i int, tc *tls.Config) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{c.endpoints[i%len(c.endpoints)]},
		DialTimeout: c.dialTimeout,
		TLS:         tc,
	})
	if err != nil {
		die("connect to %s: %v", c.endpoints[i%len(c.endpoints)], err)
	}
	return cli
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		die("random bytes: %v", err)
	}
	return b
}

// sample is one request's outcome.
type sample struct {
	lat time.Duration
	err error
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// work is what one goroutine does with the next request (an index 0..total-1).
type work func(ctx context.Context, i int) error

// kvWork builds the per-request function of put, range and txn-put on connection cli.
func kvWork(c config, cli *clientv3.Client) work {
	val := string(randBytes(c.valSize))
	key := func(i int, rnd *mrand.Rand) string {
		k := make([]byte, c.keySize)
		if c.op == "put" && !c.seqKeys {
			binary.PutVarint(k, int64(rnd.Intn(c.keySpaceSize)))
		} else {
			binary.PutVarint(k, int64(i%c.keySpaceSize))
		}
		return string(k)
	}
	switch c.op {
	case "put":
		rnd := mrand.New(mrand.NewSource(time.Now().UnixNano()))
		var mu sync.Mutex // a goroutine's closure is shared by the goroutines of its connection
		return func(ctx context.Context, i int) error {
			mu.Lock()
			k := key(i, rnd)
			mu.Unlock()
			_, err := cli.Put(ctx, k, val)
			return err
		}
	case "txn-put":
		return func(ctx context.Context, i int) error {
			k := key(i, nil)
			t := cli.Txn(ctx)
			if c.compare {
				t = t.If(clientv3.Compare(clientv3.ModRevision(k), "<", int64(1)<<62))
			}
			_, err := t.Then(clientv3.OpPut(k, val)).Commit()
			return err
		}
	default: // range
		var opts []clientv3.OpOption
		if c.consistency == "s" {
			opts = append(opts, clientv3.WithSerializable())
		}
		return func(ctx context.Context, _ int) error {
			_, err := cli.Get(ctx, c.key, opts...)
			return err
		}
	}
}

// connWork: dial (and TLS handshake), one Range, close.
func connWork(c config, tc *tls.Config) work {
	var creds grpc.DialOption
	if tc != nil {
		creds = grpc.WithTransportCredentials(credentials.NewTLS(tc))
	} else {
		creds = grpc.WithInsecure()
	}
	req := &pb.RangeRequest{Key: []byte(c.key), Serializable: c.consistency == "s"}
	return func(ctx context.Context, i int) error {
		dctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
		defer cancel()
		// grpc.Dial takes host:port; clientv3 (and so --endpoints) also accepts http:// and https:// URLs.
		target := strings.TrimPrefix(strings.TrimPrefix(c.endpoints[i%len(c.endpoints)], "https://"), "http://")
		conn, err := grpc.DialContext(dctx, target, creds, grpc.WithBlock())
		if err != nil {
			return err
		}
		defer conn.Close()
		_, err = pb.NewKVClient(conn).Range(ctx, req)
		return err
	}
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return -1
	}
	i := int(p / 100 * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i]) / 1e6
}

func main() {
	c := parseFlags()
	tc := c.tlsConfig()

	// One work function per goroutine: goroutine g uses connection g mod conns.
	works := make([]work, c.clients)
	var clis []*clientv3.Client
	if c.op == "conn" {
		w := connWork(c, tc)
		for g := range works {
			works[g] = w
		}
	} else {
		clis = make([]*clientv3.Client, c.conns)
		perConn := make([]work, c.conns)
		for i := range clis {
			clis[i] = newClient(c, i, tc)
			perConn[i] = kvWork(c, clis[i])
		}
		for g := range works {
			works[g] = perConn[g%c.conns]
		}
	}
	// Fail early, with one clear line, when a connection cannot read at all (clientv3 does not fail New
	// on an unreachable endpoint; every request would wait out its timeout).
	for i, cli := range clis {
		ctx, cancel := context.WithTimeout(context.Background(), c.dialTimeout)
		_, err := cli.Get(ctx, c.key, clientv3.WithSerializable())
		cancel()
		if err != nil {
			die("first read through connection %d (%s): %v", i, c.endpoints[i%len(c.endpoints)], err)
		}
	}

	requests := make(chan int, c.clients)
	results := make(chan sample, c.clients)
	var wg sync.WaitGroup
	cpu0 := cpuSeconds()
	start := time.Now()
	for g := 0; g < c.clients; g++ {
		wg.Add(1)
		go func(w work) {
			defer wg.Done()
			for i := range requests {
				ctx, cancel := context.WithTimeout(context.Background(), c.reqTimeout)
				st := time.Now()
				err := w(ctx, i)
				results <- sample{lat: time.Since(st), err: err}
				cancel()
			}
		}(works[g])
	}
	go func() {
		for i := 0; i < c.total; i++ {
			requests <- i
		}
		close(requests)
	}()
	go func() { wg.Wait(); close(results) }()

	lats := make([]time.Duration, 0, c.total)
	r := result{Op: c.op, Endpoints: c.endpoints, Conns: c.conns, Clients: c.clients, Total: c.total, TLS: tc != nil,
		Compare: c.compare, ErrorSample: []string{}, GoMaxProcs: runtime.GOMAXPROCS(0)}
	if c.op == "range" || c.op == "conn" {
		r.Consistency = c.consistency
	}
	var sum time.Duration
	for s := range results {
		if s.err != nil {
			r.Errors++
			if len(r.ErrorSample) < errorSampleMax {
				r.ErrorSample = append(r.ErrorSample, s.err.Error())
			}
			continue
		}
		lats = append(lats, s.lat)
		sum += s.lat
	}
	elapsed := time.Since(start)
	r.ClientCores = (cpuSeconds() - cpu0) / elapsed.Seconds()
	for _, cli := range clis {
		cli.Close()
	}
	sort.Slice(lats, func(a, b int) bool { return lats[a] < lats[b] })
	r.Ok = len(lats)
	r.Seconds = elapsed.Seconds()
	r.ReqPerSec = float64(r.Ok) / r.Seconds
	if r.Ok > 0 {
		r.AvgMs = float64(sum) / float64(r.Ok) / 1e6
		r.MaxMs = float64(lats[len(lats)-1]) / 1e6
	}
	r.P50Ms, r.P90Ms, r.P99Ms, r.P999Ms = percentile(lats, 50), percentile(lats, 90), percentile(lats, 99), percentile(lats, 99.9)
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}
