// Command kafka-edge-go-client runs named scenarios of one Go Kafka client against one bootstrap
// address and prints one JSON line per operation, {"client", "scenario", "op", "ok", ...}, like
// the Java client (tests/real/java): the Python tests assert what each client got.
//
//	kafka-edge-go-client -client franz|sarama|segmentio -bootstrap H:P[,H:P...] [-prefix P] SCENARIO...
//
// franz-go logs in with -sasl MECHANISM (-user and -password-file, or -token-file).
//
// The exit code is 1 when any operation failed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// deadline bounds every scenario: a client that hangs fails instead.
const deadline = 90 * time.Second

// run is what every scenario shares: the client's name, the bootstrap, a topic prefix, the output.
type run struct {
	client   string
	brokers  []string // the bootstrap list
	prefix   string
	login    login // franz-go only
	scenario string
	failures int
}

func (r *run) emit(op string, ok bool, fields map[string]any) {
	line := map[string]any{"client": r.client, "scenario": r.scenario, "op": op, "ok": ok}
	for k, v := range fields {
		line[k] = v
	}
	if !ok {
		r.failures++
	}
	b, err := json.Marshal(line)
	if err != nil {
		b = []byte(fmt.Sprintf(`{"op":%q,"ok":false,"error":"unprintable result"}`, op))
	}
	fmt.Println(string(b))
}

func (r *run) fail(op string, err error) {
	r.emit(op, false, map[string]any{"error": err.Error()})
}

func (r *run) topic(suffix string) string {
	return r.prefix + "-" + r.scenario + "-" + suffix
}

// values are the exact record values a scenario produces.
func values(prefix string, count int) []string {
	out := make([]string, count)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%05d", prefix, i)
	}
	return out
}

// compare says how got compares with want: count, duplicates, missing, unexpected, exact.
func compare(want, got []string) map[string]any {
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	wantSet := map[string]bool{}
	missing := 0
	for _, v := range want {
		wantSet[v] = true
		if seen[v] == 0 {
			missing++
		}
	}
	unexpected := 0
	for v := range seen {
		if !wantSet[v] {
			unexpected++
		}
	}
	return map[string]any{"count": len(got), "expected": len(want), "duplicates": dups, "missing": missing,
		"unexpected": unexpected, "exact": dups == 0 && missing == 0 && unexpected == 0}
}

func exact(cmp map[string]any) bool { return cmp["exact"].(bool) }

// sortedAddrs is "id@host:port" of each broker, sorted.
func sortedAddrs(addrs []string) []string {
	sort.Strings(addrs)
	return addrs
}

// settle polls known() until it holds (what the metadata says of a new topic), or ctx ends.
func settle(ctx context.Context, topic string, known func() bool) error {
	for !known() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s: no leaders before the deadline", topic)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

type scenarioFunc func(ctx context.Context, r *run) error

func main() {
	client := flag.String("client", "", "franz, sarama or segmentio")
	bootstrap := flag.String("bootstrap", "", "HOST:PORT")
	prefix := flag.String("prefix", "go", "topic and group name prefix")
	var l login
	flag.StringVar(&l.mechanism, "sasl", "", "franz: log in with PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER")
	flag.StringVar(&l.user, "user", "", "franz: the SASL user name")
	flag.StringVar(&l.passwordFile, "password-file", "", "franz: a file holding the SASL password")
	flag.StringVar(&l.tokenFile, "token-file", "", "franz: a file holding the OAUTHBEARER token (a JWT)")
	flag.Parse()
	clients := map[string]struct {
		name      string
		scenarios map[string]scenarioFunc
	}{
		"franz":     {franzName, franzScenarios},
		"sarama":    {saramaName, saramaScenarios},
		"segmentio": {segmentioName, segmentioScenarios},
	}
	c, known := clients[*client]
	if !known || *bootstrap == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: kafka-edge-go-client -client franz|sarama|segmentio -bootstrap H:P[,H:P...] [-prefix P] SCENARIO...")
		os.Exit(2)
	}
	if l.mechanism != "" && *client != "franz" {
		fmt.Fprintln(os.Stderr, "-sasl: only the franz client logs in")
		os.Exit(2)
	}
	r := &run{client: c.name, brokers: strings.Split(*bootstrap, ","), prefix: *prefix, login: l}
	for _, name := range flag.Args() {
		r.scenario = name
		before := r.failures
		start := time.Now()
		fn, ok := c.scenarios[name]
		var err error
		if !ok {
			err = fmt.Errorf("unknown scenario %q for %s", name, c.name)
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			err = fn(ctx, r)
			cancel()
		}
		if err != nil {
			r.fail("scenario", err)
			continue
		}
		failed := r.failures - before
		r.emit("scenario", failed == 0, map[string]any{"seconds": time.Since(start).Seconds(), "failed_ops": failed})
	}
	if r.failures > 0 {
		os.Exit(1)
	}
}
