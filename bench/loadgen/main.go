// Command loadgen is the HTTP load generator of Inlet's gateway benchmark (bench/gateway_bench.py).
//
// It speaks just enough HTTP/1.1 over kept-alive TCP connections to POST one body again and again:
// the request bytes are built once, and each response is read by its Content-Length (or chunks).
// That costs a fraction of net/http's client, so on a small machine that also runs the gateway and
// Kafka the generator stays far from being the bottleneck.
//
// Two modes:
//
//   - closed loop (default): -connections workers, each sending its next request as soon as the
//     previous answer arrived, for -duration. Latency: from write to full response.
//   - open loop (-rate R): requests are scheduled at fixed times start+i/R, whatever the server
//     does; -connections workers take them in order. Latency is measured from the *scheduled* time,
//     so a stall shows as the queue it causes (no coordinated omission, as wrk2 does it).
//
// A -warmup period runs first and is not counted. The result is one JSON object on stdout.
//
// With -stripe-secret, each request is signed as Stripe signs a webhook, at the time it is sent
// (Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body" keyed with the secret's
// text>): the path a signed sender takes, so the gateway verifies a fresh signature every time.
//
// With -body-format kafka-json or kafka-avro, the -body file holds records (a JSON array) and the
// body sent is the Confluent REST proxy's v2 produce request made of them (body.go), for the peers
// that speak it (bench/peers_bench.py); -print-body writes that body to stdout and stops.
package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type options struct {
	url         *url.URL
	body        []byte
	contentType string
	accept      string
	connections int
	duration    time.Duration
	warmup      time.Duration
	rate        float64
	timeout     time.Duration
	// Signed requests (-stripe-secret): the request's head without its last CRLF, and the key.
	head   []byte
	stripe []byte
	// uniqueHeader, if set, is sent with a new value on every request (an idempotency key).
	uniqueHeader string
}

// sent counts requests across connections: the unique header's values.
var sent atomic.Int64
var runID = strconv.FormatInt(time.Now().UnixNano(), 36)

// Result is what loadgen prints.
type Result struct {
	Mode        string         `json:"mode"`
	Connections int            `json:"connections"`
	TargetRate  float64        `json:"target_rate,omitempty"`
	DurationS   float64        `json:"duration_s"`
	Requests    int            `json:"requests"` // answered with 2xx
	Errors      int            `json:"errors"`   // non-2xx answers and I/O errors
	Missed      int            `json:"missed"`   // open loop: scheduled but never sent before the end
	Statuses    map[string]int `json:"statuses"`
	ErrorSample string         `json:"error_sample,omitempty"`
	RequestsPS  float64        `json:"requests_per_s"`
	LatencyMs   Percentiles    `json:"latency_ms"`
	BodyBytes   int            `json:"body_bytes"`
	// With a REST proxy body format: the records in each request's body.
	RecordsPerRequest int `json:"records_per_request,omitempty"`
	// Per second of the measured period: requests answered and the worst latency (ms), to tell
	// a steady tail from one stall.
	Timeline []Second `json:"timeline"`
}

// Second is one second of the timeline.
type Second struct {
	Requests int     `json:"requests"`
	MaxMs    float64 `json:"max_ms"`
}

// Percentiles of request latency, in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

type sample struct {
	latency time.Duration
	status  int
	err     error
	at      time.Duration // since the start of the measured period (when it was sent/scheduled)
}

// worker results, merged at the end (no locks on the hot path).
type tally struct {
	latencies []time.Duration
	statuses  map[int]int
	ioErrors  int
	lastErr   error
	seconds   map[int]*second // per second of the measured period: count and worst latency
}

type second struct {
	count int
	max   time.Duration
}

func (t *tally) add(s sample) {
	if s.err != nil {
		t.ioErrors++
		t.lastErr = s.err
		return
	}
	t.statuses[s.status]++
	if s.status >= 200 && s.status < 300 {
		t.latencies = append(t.latencies, s.latency)
		bucket := t.seconds[int(s.at/time.Second)]
		if bucket == nil {
			bucket = &second{}
			t.seconds[int(s.at/time.Second)] = bucket
		}
		bucket.count++
		bucket.max = max(bucket.max, s.latency)
	}
}

type conn struct {
	opts    *options
	request []byte
	c       net.Conn
	r       *bufio.Reader
	signed  []byte // the signed request, rebuilt for each send
}

// sign builds the request with a Stripe-Signature made now (see the package comment).
func (c *conn) sign() []byte {
	o := c.opts
	ts := strconv.AppendInt(nil, time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, o.stripe)
	mac.Write(ts)
	mac.Write([]byte{'.'})
	mac.Write(o.body)
	b := append(c.signed[:0], o.head...)
	b = append(b, "Stripe-Signature: t="...)
	b = append(b, ts...)
	b = append(b, ",v1="...)
	b = hex.AppendEncode(b, mac.Sum(nil))
	b = append(b, "\r\n\r\n"...)
	b = append(b, o.body...)
	c.signed = b
	return b
}

func (c *conn) dial() error {
	if c.c != nil {
		return nil
	}
	nc, err := net.DialTimeout("tcp", c.opts.url.Host, c.opts.timeout)
	if err != nil {
		return err
	}
	if tcp, ok := nc.(*net.TCPConn); ok {
		_ = tcp.SetNoDelay(true)
	}
	c.c, c.r = nc, bufio.NewReaderSize(nc, 64*1024)
	return nil
}

func (c *conn) close() {
	if c.c != nil {
		_ = c.c.Close()
		c.c = nil
	}
}

// do sends the request once and reads the whole answer; it returns the status code.
func (c *conn) do() (int, error) {
	for attempt := 0; ; attempt++ {
		if err := c.dial(); err != nil {
			return 0, err
		}
		_ = c.c.SetDeadline(time.Now().Add(c.opts.timeout))
		status, keep, err := c.roundTrip()
		if err == nil {
			if !keep {
				c.close()
			}
			return status, nil
		}
		c.close()
		// A kept-alive connection the server closed between requests: retry once on a new one.
		if attempt == 0 && errors.Is(err, io.EOF) {
			continue
		}
		return 0, err
	}
}

func (c *conn) roundTrip() (status int, keepAlive bool, err error) {
	request := c.request
	if c.opts.stripe != nil {
		request = c.sign()
	}
	if c.opts.uniqueHeader != "" {
		// The request's head ends with the blank line: the header goes just before it.
		cut := bytes.Index(request, []byte("\r\n\r\n")) + 2
		value := fmt.Sprintf("%s: %s-%d\r\n", c.opts.uniqueHeader, runID, sent.Add(1))
		request = append(append(append([]byte{}, request[:cut]...), value...), request[cut:]...)
	}
	if _, err = c.c.Write(request); err != nil {
		return 0, false, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, keepAlive := -1, false, line[7] == '1'
	for {
		header, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		header = bytes.TrimRight(header, "\r\n")
		if len(header) == 0 {
			break
		}
		name, value, ok := bytes.Cut(header, []byte(":"))
		if !ok {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("content-length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, false, fmt.Errorf("bad content-length %q", value)
			}
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("connection")):
			v := bytes.ToLower(value)
			if bytes.Contains(v, []byte("close")) {
				keepAlive = false
			} else if bytes.Contains(v, []byte("keep-alive")) {
				keepAlive = true
			}
		}
	}
	switch {
	case chunked:
		err = c.skipChunks()
	case length >= 0:
		_, err = c.r.Discard(length)
	default: // the body ends when the server closes
		_, err = io.Copy(io.Discard, c.r)
		keepAlive = false
	}
	return status, keepAlive, err
}

func (c *conn) skipChunks() error {
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		sizeText, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		size, err := strconv.ParseInt(string(bytes.TrimSpace(sizeText)), 16, 64)
		if err != nil {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if size == 0 { // trailers, then the empty line
			for {
				trailer, err := c.r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(trailer, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := c.r.Discard(int(size) + 2); err != nil {
			return err
		}
	}
}

func buildRequest(o *options) []byte {
	path := o.url.RequestURI()
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n",
		path, o.url.Host, o.contentType, len(o.body))
	fmt.Fprintf(&b, "User-Agent: inlet-loadgen\r\nAccept: %s\r\n", o.accept)
	o.head = bytes.Clone(b.Bytes())
	b.WriteString("\r\n")
	b.Write(o.body)
	return b.Bytes()
}

func closedLoop(o *options, request []byte) ([]*tally, time.Duration) {
	var wg sync.WaitGroup
	tallies := make([]*tally, o.connections)
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	end := measureFrom.Add(o.duration)
	for i := range tallies {
		t := &tally{statuses: map[int]int{}, seconds: map[int]*second{}}
		tallies[i] = t
		wg.Go(func() {
			c := &conn{opts: o, request: request}
			defer c.close()
			for {
				sent := time.Now()
				if !sent.Before(end) {
					return
				}
				status, err := c.do()
				if sent.Before(measureFrom) {
					continue
				}
				t.add(sample{time.Since(sent), status, err, sent.Sub(measureFrom)})
				if err != nil {
					time.Sleep(10 * time.Millisecond) // do not spin on a refused connection
				}
			}
		})
	}
	wg.Wait()
	return tallies, o.duration
}

func openLoop(o *options, request []byte) ([]*tally, time.Duration, int) {
	interval := time.Duration(float64(time.Second) / o.rate)
	total := int(float64(o.warmup+o.duration) / float64(interval))
	warm := int(float64(o.warmup) / float64(interval))
	type job struct {
		index     int
		scheduled time.Time
	}
	jobs := make(chan job, total+1)
	var wg sync.WaitGroup
	tallies := make([]*tally, o.connections)
	start := time.Now().Add(50 * time.Millisecond)
	end := start.Add(o.warmup + o.duration)
	var missed atomic.Int64
	for i := range tallies {
		t := &tally{statuses: map[int]int{}, seconds: map[int]*second{}}
		tallies[i] = t
		wg.Go(func() {
			c := &conn{opts: o, request: request}
			defer c.close()
			for j := range jobs {
				// A request still queued well past the end would measure the queue, not the
				// server; it counts as missed (and shows that the rate was not sustained).
				if time.Now().After(end.Add(o.timeout)) {
					missed.Add(1)
					continue
				}
				status, err := c.do()
				if j.index < warm {
					continue
				}
				t.add(sample{time.Since(j.scheduled), status, err, j.scheduled.Sub(start.Add(o.warmup))})
			}
		})
	}
	// The dispatcher: never waits for an answer, only for the clock.
	for i := range total {
		scheduled := start.Add(time.Duration(i) * interval)
		if d := time.Until(scheduled); d > 0 {
			time.Sleep(d)
		}
		jobs <- job{i, scheduled}
	}
	close(jobs)
	wg.Wait()
	return tallies, o.duration, int(missed.Load())
}

func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / 1e6
}

func summarize(o *options, mode string, tallies []*tally, elapsed time.Duration, missed int) Result {
	var all []time.Duration
	statuses := map[string]int{}
	errorsTotal := 0
	var sample error
	for _, t := range tallies {
		all = append(all, t.latencies...)
		for code, n := range t.statuses {
			statuses[strconv.Itoa(code)] += n
			if code < 200 || code >= 300 {
				errorsTotal += n
			}
		}
		if t.ioErrors > 0 {
			statuses["io_error"] += t.ioErrors
			errorsTotal += t.ioErrors
			sample = t.lastErr
		}
	}
	slices.Sort(all)
	seconds := map[int]*second{}
	last := -1
	for _, t := range tallies {
		for i, b := range t.seconds {
			merged := seconds[i]
			if merged == nil {
				merged = &second{}
				seconds[i] = merged
			}
			merged.count += b.count
			merged.max = max(merged.max, b.max)
			last = max(last, i)
		}
	}
	timeline := make([]Second, 0, last+1)
	for i := 0; i <= last; i++ {
		if b := seconds[i]; b != nil {
			timeline = append(timeline, Second{b.count, float64(b.max) / 1e6})
		} else {
			timeline = append(timeline, Second{})
		}
	}
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	r := Result{
		Mode:        mode,
		Connections: o.connections,
		TargetRate:  o.rate,
		DurationS:   elapsed.Seconds(),
		Requests:    len(all),
		Errors:      errorsTotal,
		Missed:      missed,
		Statuses:    statuses,
		RequestsPS:  float64(len(all)) / elapsed.Seconds(),
		BodyBytes:   len(o.body),
		Timeline:    timeline,
		LatencyMs: Percentiles{
			P50:  percentile(all, 0.50),
			P90:  percentile(all, 0.90),
			P99:  percentile(all, 0.99),
			P999: percentile(all, 0.999),
			Max:  percentile(all, 1.0),
		},
	}
	if len(all) > 0 {
		r.LatencyMs.Mean = float64(sum) / float64(len(all)) / 1e6
	}
	if sample != nil {
		r.ErrorSample = sample.Error()
	}
	return r
}

func main() {
	target := flag.String("url", "", "the URL to POST to (http only)")
	bodyFile := flag.String("body", "", "file holding the request body")
	contentType := flag.String("content-type", "application/json", "the Content-Type header")
	connections := flag.Int("connections", 64, "kept-alive connections (closed loop: concurrency)")
	duration := flag.Duration("duration", 10*time.Second, "how long to measure")
	warmup := flag.Duration("warmup", 2*time.Second, "how long to send before measuring")
	rate := flag.Float64("rate", 0, "requests per second (open loop); 0 means closed loop")
	timeout := flag.Duration("timeout", 30*time.Second, "per-request I/O deadline")
	stripeSecret := flag.String("stripe-secret", "", "sign each request as Stripe does, with this secret")
	uniqueHeader := flag.String("unique-header", "", "a header sent with a new value each request")
	var rest restFormat
	flag.StringVar(&rest.format, "body-format", formatRaw,
		"raw (the file is the body), or kafka-json / kafka-avro: the file's records (a JSON array) "+
			"in a Confluent REST proxy v2 produce body")
	flag.StringVar(&rest.keyField, "key-field", "", "REST proxy formats: each record's key is this field")
	flag.IntVar(&rest.valueSchemaID, "value-schema-id", 0, "kafka-avro: the value schema's id")
	valueSchema := flag.String("value-schema", "", "kafka-avro: file holding the value schema's text")
	flag.IntVar(&rest.keySchemaID, "key-schema-id", 0, "kafka-avro with -key-field: the key schema's id")
	keySchema := flag.String("key-schema", "", "kafka-avro with -key-field: file holding the key schema")
	printBody := flag.Bool("print-body", false, "write the body to stdout and exit")
	flag.Parse()
	explicit := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { explicit[f.Name] = true })

	u, err := url.Parse(*target)
	if !*printBody && (err != nil || u.Scheme != "http" || u.Host == "") {
		fmt.Fprintln(os.Stderr, "loadgen: -url must be an http:// URL")
		os.Exit(2)
	}
	records, err := os.ReadFile(*bodyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	for path, text := range map[string]*string{*valueSchema: &rest.valueSchema, *keySchema: &rest.keySchema} {
		if path == "" {
			continue
		}
		schema, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(2)
		}
		*text = string(bytes.TrimSpace(schema))
	}
	body, perRequest, err := rest.build(records)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	if *printBody {
		_, _ = os.Stdout.Write(body)
		return
	}
	if rest.contentType() != "" && !explicit["content-type"] {
		*contentType = rest.contentType()
	}
	o := &options{
		url: u, body: body, contentType: *contentType, accept: rest.accept(), connections: *connections,
		duration: *duration, warmup: *warmup, rate: *rate, timeout: *timeout,
		uniqueHeader: *uniqueHeader,
	}
	if *stripeSecret != "" {
		o.stripe = []byte(*stripeSecret)
	}
	request := buildRequest(o)
	var result Result
	if o.rate > 0 {
		tallies, elapsed, missed := openLoop(o, request)
		result = summarize(o, "open", tallies, elapsed, missed)
	} else {
		tallies, elapsed := closedLoop(o, request)
		result = summarize(o, "closed", tallies, elapsed, 0)
	}
	result.RecordsPerRequest = perRequest
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", "  ")
	if err := out.Encode(result); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
