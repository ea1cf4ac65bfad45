// watchbench: watch fan-out measured through etcd's own Go client (clientv3 of etcd 3.4), the client the
// watch issue's reference figure ("etcd 3.4 delivers about 270k events/s") was taken with.
//
// N watchers on one prefix (WithPrefix), spread evenly over C clientv3.Clients (one gRPC connection each;
// all watchers of a client are made with the same context, so clientv3 multiplexes them on that client's
// one Watch stream), while W writers, each a goroutine with a client of its own, do sequential Puts round
// robin over K keys under the prefix for S seconds. Writes start only after every watcher has received its
// created response (WithCreatedNotify). After the writers stop, it waits until every expected event
// (writes × watchers) has arrived, or 30 s.
//
// Prints ONE JSON object on stdout (see result). On stderr, the lines "#phase start" (just before the first
// Put) and "#phase end" (after the drain) let a driver (bench/watch_go.ts) read the server's CPU over the
// same interval.
//
//	go build (bench/go/build.sh), then:
//	watchbench [--endpoint 127.0.0.1:2379] [--watchers 1000] [--connections 10] [--prefix /wbench/]
//	           [--keys 200] [--seconds 5] [--value-bytes 100] [--writers 1] [--sample 10]
//
// Event latency = arrival of an event at a sampled watcher (every --sample-th) minus the time the Put whose
// response revision equals the event's kv.ModRevision was sent. It includes the Put's commit and fsync.
//
// Correctness, per watcher: the number of events, that mod revisions strictly increase, and that the sum
// of the mod revisions received equals the sum of the Puts' revisions (so every Put's event arrived once,
// when the count also matches). Sampled watchers keep every revision and are compared one by one.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
)

type config struct {
	endpoint    string
	watchers    int
	connections int
	prefix      string
	keys        int
	seconds     float64
	valueBytes  int
	writers     int
	sample      int
}

const (
	createTimeout = 60 * time.Second
	drainTimeout  = 30 * time.Second
	dialTimeout   = 5 * time.Second
	putTimeout    = 10 * time.Second
)

// watcherState is written by its watcher's goroutine only; count and lastAt are also read (atomically) by
// the main goroutine while it waits for the drain. Padded to a cache line so watchers do not share one.
type watcherState struct {
	count    int64 // events received (atomic)
	lastAt   int64 // arrival of the last event, ns since base (atomic)
	lastRev  int64 // mod revision of the last event
	revSum   int64 // sum of the events' mod revisions
	disorder int64 // events whose mod revision was not above the previous one
	sampled  bool
	revs     []int64 // sampled watchers: each event's mod revision
	at       []int64 // sampled watchers: each event's arrival, ns since base
	err      string  // a canceled response or a closed channel before the end
	_        [64]byte
}

type writerLog struct {
	revs   []int64
	sentAt []int64 // ns since base
	err    string
}

type result struct {
	Endpoint       string   `json:"endpoint"`
	Watchers       int      `json:"watchers"`
	Connections    int      `json:"connections"`
	Keys           int      `json:"keys"`
	Writers        int      `json:"writers"`
	Seconds        float64  `json:"seconds"`
	ValueBytes     int      `json:"valueBytes"`
	Writes         int64    `json:"writes"`
	WriteSec       float64  `json:"writeSec"`
	WritesPerSec   float64  `json:"writesPerSec"`
	Events         int64    `json:"events"`
	Expected       int64    `json:"expected"`
	Complete       bool     `json:"complete"`
	DeliverSec     float64  `json:"deliverSec"`
	EventsPerSec   float64  `json:"eventsPerSec"`
	P50Ms          float64  `json:"p50Ms"`
	P99Ms          float64  `json:"p99Ms"`
	Samples        int      `json:"samples"`
	Unmatched      int      `json:"unmatchedSamples"`
	ClientCPUSec   float64  `json:"clientCpuSec"`
	ClientCores    float64  `json:"clientCores"`
	GoMaxProcs     int      `json:"gomaxprocs"`
	WatchersShort  int      `json:"watchersShort"`
	WatchersOver   int      `json:"watchersOver"`
	Disordered     int64    `json:"disorderedEvents"`
	RevSumMismatch int      `json:"revSumMismatch"`
	SampledMissing int      `json:"sampledMissing"`
	Errors         []string `json:"errors"`
}

func parseFlags() config {
	var c config
	flag.StringVar(&c.endpoint, "endpoint", "127.0.0.1:2379", "etcd client endpoint host:port")
	flag.IntVar(&c.watchers, "watchers", 1000, "watchers on the prefix")
	flag.IntVar(&c.connections, "connections", 10, "clients (connections) the watchers are spread over")
	flag.StringVar(&c.prefix, "prefix", "/wbench/", "watched prefix; the writers put under it")
	flag.IntVar(&c.keys, "keys", 200, "keys the writers put round robin")
	flag.Float64Var(&c.seconds, "seconds", 5, "seconds of writes")
	flag.IntVar(&c.valueBytes, "value-bytes", 100, "value size")
	flag.IntVar(&c.writers, "writers", 1, "writer goroutines, each with a client of its own")
	flag.IntVar(&c.sample, "sample", 10, "latency on every n-th watcher")
	flag.Parse()
	if c.watchers < 1 || c.connections < 1 || c.keys < 1 || c.writers < 1 || c.sample < 1 || c.seconds <= 0 {
		fmt.Fprintln(os.Stderr, "watchbench: --watchers, --connections, --keys, --writers, --sample must be >= 1 and --seconds > 0")
		os.Exit(2)
	}
	return c
}

func newClient(endpoint string) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: dialTimeout})
	if err != nil {
		fail("connect %s: %v", endpoint, err)
	}
	return cli
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "watchbench: "+format+"\n", args...)
	os.Exit(1)
}

func cpuSec() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// watch reads one watcher's channel until it closes (its context canceled at the end) or fails.
func watch(wch clientv3.WatchChan, st *watcherState, base time.Time, created *sync.WaitGroup) {
	first := true
	for resp := range wch {
		if first {
			first = false
			if !resp.Created {
				st.err = "first response was not the created notification"
			}
			created.Done()
			if resp.Created {
				continue
			}
		}
		if err := resp.Err(); err != nil {
			st.err = err.Error()
			return
		}
		n := len(resp.Events)
		if n == 0 {
			continue
		}
		now := int64(time.Since(base))
		for _, ev := range resp.Events {
			rev := ev.Kv.ModRevision
			if rev <= st.lastRev {
				st.disorder++
			}
			st.lastRev = rev
			st.revSum += rev
			if st.sampled {
				st.revs = append(st.revs, rev)
				st.at = append(st.at, now)
			}
		}
		atomic.StoreInt64(&st.lastAt, now)
		atomic.AddInt64(&st.count, int64(n))
	}
	if first {
		created.Done() // closed before it was created; st.err says so below
		st.err = "watch channel closed before the created notification"
	}
}

// writer does sequential Puts, keys round robin from a shared counter, until stopAt.
func writer(cli *clientv3.Client, c config, next *int64, value string, base time.Time, stopAt time.Duration, log *writerLog) {
	for time.Since(base) < stopAt {
		i := atomic.AddInt64(next, 1) - 1
		key := fmt.Sprintf("%skey/%06d", c.prefix, i%int64(c.keys))
		at := int64(time.Since(base))
		ctx, cancel := context.WithTimeout(context.Background(), putTimeout)
		resp, err := cli.Put(ctx, key, value)
		cancel()
		if err != nil {
			log.err = err.Error()
			return
		}
		log.revs = append(log.revs, resp.Header.Revision)
		log.sentAt = append(log.sentAt, at)
	}
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return -1
	}
	i := int(q * float64(len(sorted)))
	if i > len(sorted)-1 {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func main() {
	c := parseFlags()
	base := time.Now()
	r := result{Endpoint: c.endpoint, Watchers: c.watchers, Connections: c.connections, Keys: c.keys, Writers: c.writers,
		Seconds: c.seconds, ValueBytes: c.valueBytes, GoMaxProcs: runtime.GOMAXPROCS(0), Errors: []string{}}

	// Watch clients: watchers spread evenly, one context per client so that clientv3 puts them on one stream.
	clients := make([]*clientv3.Client, c.connections)
	ctxs := make([]context.Context, c.connections)
	cancels := make([]context.CancelFunc, c.connections)
	for i := range clients {
		clients[i] = newClient(c.endpoint)
		ctxs[i], cancels[i] = context.WithCancel(context.Background())
	}
	states := make([]watcherState, c.watchers)
	var created, done sync.WaitGroup
	created.Add(c.watchers)
	done.Add(c.watchers)
	per, extra := c.watchers/c.connections, c.watchers%c.connections
	w := 0
	for ci := 0; ci < c.connections; ci++ {
		n := per
		if ci < extra {
			n++
		}
		first := w
		w += n
		// Watch() blocks until its created response, so each client creates its watchers on a goroutine.
		go func(ci, first, n int) {
			for k := first; k < first+n; k++ {
				st := &states[k]
				st.sampled = k%c.sample == 0
				wch := clients[ci].Watch(ctxs[ci], c.prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
				go func() { defer done.Done(); watch(wch, st, base, &created) }()
			}
		}(ci, first, n)
	}
	waitOrFail(&created, createTimeout, fmt.Sprintf("not all %d watchers were created within %v", c.watchers, createTimeout))
	for i := range states {
		if states[i].err != "" {
			fail("watcher %d: %s", i, states[i].err)
		}
	}

	// Writers, each on a client of its own, warmed up with one Put outside the prefix.
	value := string(bytesOf('v', c.valueBytes))
	wclients := make([]*clientv3.Client, c.writers)
	for i := range wclients {
		wclients[i] = newClient(c.endpoint)
		ctx, cancel := context.WithTimeout(context.Background(), putTimeout)
		if _, err := wclients[i].Put(ctx, "/wbench-warmup", value); err != nil {
			fail("warm-up Put: %v", err)
		}
		cancel()
	}
	logs := make([]writerLog, c.writers)
	var next int64
	var wwg sync.WaitGroup
	fmt.Fprintln(os.Stderr, "#phase start")
	cpu0 := cpuSec()
	t0 := time.Since(base)
	stopAt := t0 + time.Duration(c.seconds*float64(time.Second))
	for i := range wclients {
		wwg.Add(1)
		go func(i int) { defer wwg.Done(); writer(wclients[i], c, &next, value, base, stopAt, &logs[i]) }(i)
	}
	wwg.Wait()
	tw := time.Since(base)
	for _, l := range logs {
		r.Writes += int64(len(l.revs))
		if l.err != "" {
			r.Errors = append(r.Errors, "writer: "+l.err)
		}
	}
	r.Expected = r.Writes * int64(c.watchers)

	// Drain: until every expected event arrived or drainTimeout after the last write.
	total := func() int64 {
		var s int64
		for i := range states {
			s += atomic.LoadInt64(&states[i].count)
		}
		return s
	}
	drainUntil := tw + drainTimeout
	for total() < r.Expected && time.Since(base) < drainUntil {
		time.Sleep(5 * time.Millisecond)
	}
	r.Events = total()
	r.Complete = r.Events >= r.Expected
	var lastAt int64
	for i := range states {
		if a := atomic.LoadInt64(&states[i].lastAt); a > lastAt {
			lastAt = a
		}
	}
	tEnd := time.Duration(lastAt)
	if !r.Complete {
		tEnd = time.Since(base)
	}
	r.ClientCPUSec = cpuSec() - cpu0
	fmt.Fprintln(os.Stderr, "#phase end")

	// Stop the watchers: canceling a client's context closes its watchers' channels.
	for _, cancel := range cancels {
		cancel()
	}
	waitOrFail(&done, 10*time.Second, "watcher goroutines did not end after cancel")
	for _, cli := range append(clients, wclients...) {
		cli.Close()
	}

	r.WriteSec = (tw - t0).Seconds()
	r.WritesPerSec = float64(r.Writes) / r.WriteSec
	r.DeliverSec = (tEnd - t0).Seconds()
	r.EventsPerSec = float64(r.Events) / r.DeliverSec
	r.ClientCores = r.ClientCPUSec / r.DeliverSec
	check(&r, states, logs)
	latency(&r, states, logs)

	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

// check fills the per-watcher correctness fields.
func check(r *result, states []watcherState, logs []writerLog) {
	var revSum int64
	sent := make(map[int64]bool, r.Writes)
	for _, l := range logs {
		for _, rev := range l.revs {
			revSum += rev
			sent[rev] = true
		}
	}
	errs := map[string]int{}
	for i := range states {
		st := &states[i]
		switch {
		case st.count < r.Writes:
			r.WatchersShort++
		case st.count > r.Writes:
			r.WatchersOver++
		}
		r.Disordered += st.disorder
		if st.revSum != revSum {
			r.RevSumMismatch++
		}
		if st.sampled {
			seen := make(map[int64]bool, len(st.revs))
			for _, rev := range st.revs {
				seen[rev] = true
			}
			for rev := range sent {
				if !seen[rev] {
					r.SampledMissing++
				}
			}
		}
		if st.err != "" {
			errs[st.err]++
		}
	}
	for e, n := range errs {
		r.Errors = append(r.Errors, fmt.Sprintf("%d watchers: %s", n, e))
	}
}

// latency fills p50/p99 from the sampled watchers: arrival minus the send time of the Put of that revision.
func latency(r *result, states []watcherState, logs []writerLog) {
	sentAt := make(map[int64]int64, r.Writes)
	for _, l := range logs {
		for i, rev := range l.revs {
			sentAt[rev] = l.sentAt[i]
		}
	}
	var lat []float64
	for i := range states {
		st := &states[i]
		for j, rev := range st.revs {
			at, ok := sentAt[rev]
			if !ok {
				r.Unmatched++
				continue
			}
			lat = append(lat, float64(st.at[j]-at)/1e6)
		}
	}
	sort.Float64s(lat)
	r.Samples = len(lat)
	r.P50Ms = quantile(lat, 0.5)
	r.P99Ms = quantile(lat, 0.99)
}

func waitOrFail(wg *sync.WaitGroup, d time.Duration, msg string) {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	select {
	case <-ch:
	case <-time.After(d):
		fail("%s", msg)
	}
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}
