package segment

// This file generates the benchmark corpus: a deterministic, realistic stream
// of Docker json-file records, byte for byte as the driver hands them to
// Writer.Append. No file is downloaded; the same seed gives the same bytes.
//
// Short-record corpus (corpusShort), by events drawn from a seeded PCG:
//   - 58.3% nginx "combined" access-log lines plus upstream timings (stdout):
//     client IPs from a pool of 2000 drawn Zipf-style, 13 route templates
//     with random ids, query strings (escaped "&" becomes \u0026 as in
//     json-file), weighted methods and status codes, 12 user agents,
//     referers, byte counts and latencies.
//   - 41.4% JSON application logs (stdout), zap/logback-like with a stable
//     field order: ts, level (DEBUG 10%, INFO 68%, WARN 14%, ERROR 8%),
//     logger, msg (one of 16 events), request and trace ids (random hex, the
//     incompressible part), user ids, durations, and nested "http" and event
//     objects. The whole object is escaped inside "log".
//   - 0.3% stack-trace events (stderr): a Java exception with "at" frames,
//     an optional "Caused by:" chain and "... N more", or a Go panic with
//     goroutine headers, frames with random pointer arguments and file:line
//     lines. One record per line (10 to 45 lines each), so traces make
//     about 8% of the records.
//
// By records that is about 54% access, 38% JSON app, 8% trace lines, and
// records average about 350 bytes (TestCorpus checks and logs the actual
// mix). Record times start at 2026-11-27T15:44:05.123456789Z and increase by
// an exponential gap of mean 20 µs (a busy container), 1 to 4 µs between the
// lines of one trace.
//
// 1 KiB corpus (corpusKiB): JSON application logs of request dumps (the
// prefix fields of "request completed" plus request headers, a SQL statement
// with random ids and an item list) grown to a target drawn uniformly from
// 620 to 1010 bytes of log text; escaped into records of about 1 KiB.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

var (
	corpusOut  = flag.String("corpus-out", "", "TestCorpus writes the benchmark corpus (-corpus-kind, -corpus-size) to this file")
	corpusKind = flag.String("corpus-kind", "short", "corpus of -corpus-out: short or kib")
	corpusSize = flag.Int("corpus-size", 16<<20, "bytes of records in the benchmark corpora (at least this much, whole records)")
)

// Corpus kinds.
const (
	corpusShort = "short"
	corpusKiB   = "kib"
)

// corpusSeed seeds every generated corpus.
const corpusSeed = 20261127

// corpusStart is the time of a corpus' first record.
var corpusStart = time.Date(2026, 11, 27, 15, 44, 5, 123456789, time.UTC)

// corpus is a generated sequence of json-file records.
type corpus struct {
	kind  string
	data  []byte      // all records, concatenated
	recs  [][]byte    // each record, a subslice of data ending in '\n'
	times []time.Time // each record's time
	// mix counts records and bytes by source: "access", "app", "trace".
	mixRecs  map[string]int
	mixBytes map[string]int
}

var (
	corpusMu    sync.Mutex
	corpusCache = map[string]*corpus{}
)

// loadCorpus returns the corpus of a kind and size, generating it once per
// test binary.
func loadCorpus(kind string, size int) *corpus {
	corpusMu.Lock()
	defer corpusMu.Unlock()
	k := kind + "/" + strconv.Itoa(size)
	if c := corpusCache[k]; c != nil {
		return c
	}
	c := genCorpus(kind, size, corpusSeed)
	corpusCache[k] = c
	return c
}

// genCorpus generates at least size bytes of whole records.
func genCorpus(kind string, size int, seed uint64) *corpus {
	g := newCorpusGen(seed)
	c := &corpus{kind: kind, mixRecs: map[string]int{}, mixBytes: map[string]int{}}
	var offs []int
	emit := func(src, stream string, line []byte) {
		offs = append(offs, len(c.data))
		n := len(c.data)
		c.data = g.appendRecord(c.data, stream, line)
		c.times = append(c.times, g.t)
		c.mixRecs[src]++
		c.mixBytes[src] += len(c.data) - n
	}
	for len(c.data) < size {
		switch kind {
		case corpusKiB:
			g.advance(g.gap())
			emit("app", "stdout", g.bigAppLine())
		case corpusShort:
			g.advance(g.gap())
			switch p := g.r.Float64(); {
			case p < 0.003:
				for i, line := range g.trace() {
					if i > 0 {
						g.advance(time.Duration(1000 + g.r.IntN(3000)))
					}
					emit("trace", "stderr", line)
				}
			case p < 0.003+0.414:
				emit("app", "stdout", g.appLine())
			default:
				emit("access", "stdout", g.accessLine())
			}
		default:
			panic("unknown corpus kind " + kind)
		}
	}
	offs = append(offs, len(c.data))
	c.recs = make([][]byte, len(offs)-1)
	for i := range c.recs {
		c.recs[i] = c.data[offs[i]:offs[i+1]:offs[i+1]]
	}
	return c
}

// corpusGen holds the generator's random source, clock and vocabularies.
type corpusGen struct {
	r    *rand.Rand
	t    time.Time
	ips  []string
	ipZ  *rand.Zipf
	uaZ  *rand.Zipf
	uids *rand.Zipf
	line []byte
}

func newCorpusGen(seed uint64) *corpusGen {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	g := &corpusGen{r: r, t: corpusStart}
	g.ips = make([]string, 2000)
	for i := range g.ips {
		switch r.IntN(4) {
		case 0:
			g.ips[i] = fmt.Sprintf("10.%d.%d.%d", r.IntN(256), r.IntN(256), 1+r.IntN(254))
		default:
			g.ips[i] = fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(223), r.IntN(256), r.IntN(256), 1+r.IntN(254))
		}
	}
	g.ipZ = rand.NewZipf(r, 1.1, 4, uint64(len(g.ips)-1))
	g.uaZ = rand.NewZipf(r, 1.3, 2, uint64(len(userAgents)-1))
	g.uids = rand.NewZipf(r, 1.05, 10, 999_999)
	return g
}

// gap is the time between two events: exponential, mean 20 µs.
func (g *corpusGen) gap() time.Duration {
	return time.Duration(g.r.ExpFloat64()*20_000) + 1
}

func (g *corpusGen) advance(d time.Duration) { g.t = g.t.Add(d) }

// appendRecord appends the json-file record of one line as the driver
// writes it: the line with its newline escaped by encoding/json (which, like
// json-file, escapes <, > and &), the stream, and the RFC 3339 nano time.
func (g *corpusGen) appendRecord(dst []byte, stream string, line []byte) []byte {
	s := make([]byte, 0, len(line)+1)
	s = append(append(s, line...), '\n')
	q, err := json.Marshal(string(s))
	if err != nil {
		panic(err)
	}
	dst = append(dst, `{"log":`...)
	dst = append(dst, q...)
	dst = append(dst, `,"stream":"`...)
	dst = append(dst, stream...)
	dst = append(dst, `","time":"`...)
	dst = g.t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, "\"}\n"...)
}

func (g *corpusGen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// weighted picks from choices by their weights.
func (g *corpusGen) weighted(choices []weightedChoice) string {
	p := g.r.Float64()
	for _, c := range choices {
		if p < c.w {
			return c.s
		}
		p -= c.w
	}
	return choices[len(choices)-1].s
}

type weightedChoice struct {
	s string
	w float64
}

func (g *corpusGen) hex(dst []byte, n int) []byte {
	for range n {
		dst = append(dst, "0123456789abcdef"[g.r.IntN(16)])
	}
	return dst
}

func (g *corpusGen) uuid(dst []byte) []byte {
	dst = g.hex(dst, 8)
	dst = append(dst, '-')
	dst = g.hex(dst, 4)
	dst = append(dst, "-4"...)
	dst = g.hex(dst, 3)
	dst = append(dst, '-', "89ab"[g.r.IntN(4)])
	dst = g.hex(dst, 3)
	dst = append(dst, '-')
	return g.hex(dst, 12)
}

var (
	methods  = []weightedChoice{{"GET", 0.80}, {"POST", 0.12}, {"PUT", 0.04}, {"DELETE", 0.02}, {"PATCH", 0.01}, {"HEAD", 0.01}}
	statuses = []weightedChoice{
		{"200", 0.80}, {"304", 0.05}, {"404", 0.05}, {"302", 0.02}, {"301", 0.01}, {"400", 0.02},
		{"401", 0.015}, {"403", 0.01}, {"500", 0.01}, {"499", 0.005}, {"502", 0.005}, {"503", 0.005},
	}
	userAgents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.39 Mobile Safari/537.36",
		"kube-probe/1.31",
		"Prometheus/2.55.1",
		"curl/8.5.0",
		"Go-http-client/1.1",
		"python-requests/2.32.3",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"okhttp/4.12.0",
	}
	staticHashes = []string{"3f9a1c2e", "b71d04aa", "0c5e9f13", "e2a8b6d0", "91f3c7b4"}
	categories   = []string{"shoes", "books", "garden", "toys", "kitchen", "audio", "laptops", "outdoor"}
	words        = []string{"red", "running", "wireless", "cotton", "mug", "lamp", "usb-c", "case", "kids", "pro", "mini", "organic", "steel", "travel"}
	hosts        = []string{"shop.example.com", "www.example.com", "m.example.com"}
)

// appendPath appends a request path with random ids and query strings.
func (g *corpusGen) appendPath(b []byte) []byte {
	switch g.r.IntN(13) {
	case 0:
		return fmt.Appendf(b, "/api/v1/users/%d", g.uids.Uint64())
	case 1:
		return fmt.Appendf(b, "/api/v1/users/%d/orders?page=%d&limit=50", g.uids.Uint64(), 1+g.r.IntN(9))
	case 2:
		b = append(b, "/api/v1/orders/ord_"...)
		return g.hex(b, 16)
	case 3:
		return fmt.Appendf(b, "/api/v1/products?category=%s&page=%d&sort=%s", g.pick(categories), 1+g.r.IntN(20), g.pick([]string{"price", "rating", "new"}))
	case 4:
		return fmt.Appendf(b, "/static/js/app.%s.js", g.pick(staticHashes))
	case 5:
		return fmt.Appendf(b, "/static/css/main.%s.css", g.pick(staticHashes))
	case 6:
		return append(b, "/healthz"...)
	case 7:
		return append(b, "/metrics"...)
	case 8:
		return fmt.Appendf(b, "/api/v2/search?q=%s+%s&lang=en", g.pick(words), g.pick(words))
	case 9:
		b = append(b, "/images/"...)
		b = g.hex(b, 12)
		return fmt.Appendf(b, "/%dx%d.webp", 120*(1+g.r.IntN(4)), 120*(1+g.r.IntN(4)))
	case 10:
		return append(b, "/api/v1/cart"...)
	case 11:
		return fmt.Appendf(b, "/api/v1/products/%d/reviews", 10000+g.r.IntN(90000))
	default:
		return append(b, "/login"...)
	}
}

// accessLine is an nginx combined log line with upstream timings.
func (g *corpusGen) accessLine() []byte {
	b := g.line[:0]
	b = append(b, g.ips[g.ipZ.Uint64()]...)
	b = append(b, " - - ["...)
	b = g.t.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = append(b, g.weighted(methods)...)
	b = append(b, ' ')
	b = g.appendPath(b)
	b = append(b, " HTTP/1.1\" "...)
	status := g.weighted(statuses)
	b = append(b, status...)
	size := int(g.r.ExpFloat64() * 4000)
	if status == "304" {
		size = 0
	}
	b = fmt.Appendf(b, " %d \"", size)
	if g.r.IntN(2) == 0 {
		b = append(b, '-')
	} else {
		b = fmt.Appendf(b, "https://%s", g.pick(hosts))
		b = g.appendPath(b)
	}
	b = append(b, "\" \""...)
	b = append(b, userAgents[g.uaZ.Uint64()]...)
	rt := g.r.ExpFloat64() * 0.04
	b = fmt.Appendf(b, "\" rt=%.3f uct=\"0.000\" uht=\"%.3f\" urt=\"%.3f\"", rt+0.001, rt, rt)
	g.line = b
	return b
}

// appEvent is one kind of application log message.
type appEvent struct {
	logger, msg string
	level       string // "" means drawn from the level mix
	fields      func(g *corpusGen, b []byte) []byte
}

var appEvents = []appEvent{
	{"http.server", "request completed", "", func(g *corpusGen, b []byte) []byte {
		b = fmt.Appendf(b, `,"http":{"method":"%s","path":"`, g.weighted(methods))
		b = g.appendPath(b)
		return fmt.Appendf(b, `","status":%s,"bytes":%d},"duration_ms":%.2f`, g.weighted(statuses), int(g.r.ExpFloat64()*3000), g.r.ExpFloat64()*30)
	}},
	{"orders.service", "order created", "INFO", func(g *corpusGen, b []byte) []byte {
		b = append(b, `,"order":{"id":"ord_`...)
		b = g.hex(b, 16)
		return fmt.Appendf(b, `","items":%d,"total":"%d.%02d","currency":"%s"},"user_id":%d`, 1+g.r.IntN(6), g.r.IntN(400), g.r.IntN(100), g.pick([]string{"EUR", "USD", "GBP"}), g.uids.Uint64())
	}},
	{"orders.service", "payment authorized", "INFO", func(g *corpusGen, b []byte) []byte {
		b = append(b, `,"payment":{"provider":"`...)
		b = append(b, g.pick([]string{"stripe", "adyen", "paypal"})...)
		b = append(b, `","auth_code":"`...)
		b = g.hex(b, 10)
		return fmt.Appendf(b, `","amount_cents":%d},"duration_ms":%.2f`, g.r.IntN(40000), 20+g.r.ExpFloat64()*200)
	}},
	{"db.pool", "query executed", "DEBUG", func(g *corpusGen, b []byte) []byte {
		return fmt.Appendf(b, `,"db":{"statement":"SELECT id, status, total FROM orders WHERE user_id = $1 AND created_at > $2 ORDER BY created_at DESC LIMIT %d","rows":%d,"conn":%d},"duration_ms":%.3f`, 10*(1+g.r.IntN(5)), g.r.IntN(50), g.r.IntN(32), g.r.ExpFloat64()*4)
	}},
	{"db.pool", "slow query", "WARN", func(g *corpusGen, b []byte) []byte {
		return fmt.Appendf(b, `,"db":{"statement":"UPDATE inventory SET reserved = reserved + $1 WHERE sku = $2","sku":"SKU-%06d","rows":1},"duration_ms":%.1f,"threshold_ms":500`, g.r.IntN(1000000), 500+g.r.ExpFloat64()*900)
	}},
	{"cache", "cache miss", "DEBUG", func(g *corpusGen, b []byte) []byte {
		return fmt.Appendf(b, `,"cache":{"key":"product:%d:v3","ttl_s":300},"duration_ms":%.3f`, 10000+g.r.IntN(90000), g.r.ExpFloat64())
	}},
	{"auth", "token validated", "", func(g *corpusGen, b []byte) []byte {
		b = fmt.Appendf(b, `,"user_id":%d,"scopes":["orders:read","orders:write"],"token_id":"`, g.uids.Uint64())
		b = g.hex(b, 20)
		return append(b, `"`...)
	}},
	{"auth", "login failed", "WARN", func(g *corpusGen, b []byte) []byte {
		return fmt.Appendf(b, `,"reason":"%s","client_ip":"%s","attempt":%d`, g.pick([]string{"bad_password", "unknown_user", "mfa_required", "locked"}), g.ips[g.ipZ.Uint64()], 1+g.r.IntN(5))
	}},
	{"inventory", "stock reserved", "INFO", func(g *corpusGen, b []byte) []byte {
		return fmt.Appendf(b, `,"sku":"SKU-%06d","warehouse":"%s","quantity":%d,"remaining":%d`, g.r.IntN(1000000), g.pick([]string{"fra-1", "ams-2", "dub-1"}), 1+g.r.IntN(4), g.r.IntN(500))
	}},
	{"http.client", "upstream request failed", "ERROR", func(g *corpusGen, b []byte) []byte {
		return fmt.Appendf(b, `,"upstream":"http://pricing.internal:8080/v1/quote","error":"dial tcp 10.0.%d.%d:8080: connect: connection refused","attempt":%d,"retry_in_ms":%d`, g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(3), 100*(1+g.r.IntN(8)))
	}},
	{"worker", "job finished", "INFO", func(g *corpusGen, b []byte) []byte {
		b = append(b, `,"job":{"id":"`...)
		b = g.uuid(b)
		return fmt.Appendf(b, `","type":"%s","attempt":1},"duration_ms":%.1f,"processed":%d`, g.pick([]string{"send_email", "reindex", "thumbnail", "export_csv"}), g.r.ExpFloat64()*800, g.r.IntN(1000))
	}},
	{"worker", "job queued", "DEBUG", func(g *corpusGen, b []byte) []byte {
		b = append(b, `,"job":{"id":"`...)
		b = g.uuid(b)
		return fmt.Appendf(b, `","type":"%s"},"queue_depth":%d`, g.pick([]string{"send_email", "reindex", "thumbnail", "export_csv"}), g.r.IntN(200))
	}},
	{"grpc.server", "finished unary call", "", func(g *corpusGen, b []byte) []byte {
		return fmt.Appendf(b, `,"grpc":{"service":"pricing.v1.Pricing","method":"%s","code":"%s"},"duration_ms":%.3f,"peer":"%s:%d"`, g.pick([]string{"Quote", "BatchQuote", "GetRules"}), g.weighted([]weightedChoice{{"OK", 0.95}, {"NotFound", 0.03}, {"DeadlineExceeded", 0.02}}), g.r.ExpFloat64()*10, g.ips[g.ipZ.Uint64()], 30000+g.r.IntN(30000))
	}},
	{"session", "session refreshed", "DEBUG", func(g *corpusGen, b []byte) []byte {
		b = append(b, `,"session_id":"`...)
		b = g.hex(b, 32)
		return fmt.Appendf(b, `","expires_in_s":3600,"user_id":%d`, g.uids.Uint64())
	}},
	{"mailer", "email sent", "INFO", func(g *corpusGen, b []byte) []byte {
		return fmt.Appendf(b, `,"template":"%s","to_domain":"%s","message_id":"<%d.%d@mail.example.com>"`, g.pick([]string{"order_confirmation", "password_reset", "shipping_update"}), g.pick([]string{"gmail.com", "outlook.com", "example.org", "yahoo.com"}), g.r.Int64N(1e12), g.r.IntN(1e6))
	}},
	{"app", "config reloaded", "INFO", func(g *corpusGen, b []byte) []byte {
		return fmt.Appendf(b, `,"version":%d,"changed":["rate_limit.rps","features.new_checkout"],"source":"/etc/app/config.yaml"`, 100+g.r.IntN(50))
	}},
}

var appLevels = []weightedChoice{{"DEBUG", 0.10}, {"INFO", 0.68}, {"WARN", 0.14}, {"ERROR", 0.08}}

// appendAppPrefix appends the common head of a JSON application log line.
func (g *corpusGen) appendAppPrefix(b []byte, ev appEvent) []byte {
	level := ev.level
	if level == "" {
		level = g.weighted(appLevels)
	}
	b = append(b, `{"ts":"`...)
	b = g.t.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = fmt.Appendf(b, `","level":"%s","logger":"%s","msg":"%s","request_id":"`, level, ev.logger, ev.msg)
	b = g.uuid(b)
	b = append(b, `","trace_id":"`...)
	b = g.hex(b, 32)
	b = append(b, '"')
	return b
}

// appLine is a JSON application log line.
func (g *corpusGen) appLine() []byte {
	ev := appEvents[g.r.IntN(len(appEvents))]
	b := g.appendAppPrefix(g.line[:0], ev)
	b = ev.fields(g, b)
	b = append(b, '}')
	g.line = b
	return b
}

var headerValues = []string{
	`"accept":"application/json"`,
	`"accept-encoding":"gzip, deflate, br"`,
	`"accept-language":"en-US,en;q=0.9,de;q=0.8"`,
	`"content-type":"application/json; charset=utf-8"`,
	`"x-forwarded-proto":"https"`,
	`"cache-control":"no-cache"`,
	`"sec-fetch-mode":"cors"`,
	`"x-client-version":"web-4.18.2"`,
}

// bigAppLine is a JSON request-dump line of 620 to 1010 bytes of log text
// (escaped into a record of about 1 KiB).
func (g *corpusGen) bigAppLine() []byte {
	target := 620 + g.r.IntN(391)
	ev := appEvents[0]
	b := g.appendAppPrefix(g.line[:0], ev)
	b = ev.fields(g, b)
	b = append(b, `,"request":{"headers":{"user-agent":`...)
	q, _ := json.Marshal(userAgents[g.uaZ.Uint64()])
	b = append(b, q...)
	b = fmt.Appendf(b, `,"x-forwarded-for":"%s"`, g.ips[g.ipZ.Uint64()])
	for _, i := range g.r.Perm(len(headerValues))[:3+g.r.IntN(4)] {
		b = append(b, ',')
		b = append(b, headerValues[i]...)
	}
	b = append(b, `,"cookie":"sid=`...)
	b = g.hex(b, 32)
	b = append(b, `"}},"sql":"SELECT p.id, p.sku, p.price, s.quantity FROM products p JOIN stock s ON s.sku = p.sku WHERE p.id IN (`...)
	for i := range 4 + g.r.IntN(8) {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(10000+g.r.IntN(90000)), 10)
	}
	b = append(b, `)","items":[`...)
	for i := 0; len(b) < target-2; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"sku":"SKU-%06d","qty":%d,"price":"%d.%02d","name":"%s %s"}`, g.r.IntN(1000000), 1+g.r.IntN(3), g.r.IntN(200), g.r.IntN(100), g.pick(words), g.pick(words))
	}
	b = append(b, "]}"...)
	g.line = b
	return b
}

var javaFrames = []string{
	"com.example.orders.OrderService.create(OrderService.java:142)",
	"com.example.orders.OrderController.post(OrderController.java:67)",
	"com.example.orders.PricingClient.quote(PricingClient.java:88)",
	"com.example.orders.InventoryRepository.reserve(InventoryRepository.java:211)",
	"jdk.internal.reflect.GeneratedMethodAccessor212.invoke(Unknown Source)",
	"java.base/jdk.internal.reflect.DelegatingMethodAccessorImpl.invoke(DelegatingMethodAccessorImpl.java:43)",
	"java.base/java.lang.reflect.Method.invoke(Method.java:568)",
	"org.springframework.web.method.support.InvocableHandlerMethod.doInvoke(InvocableHandlerMethod.java:205)",
	"org.springframework.web.method.support.InvocableHandlerMethod.invokeForRequest(InvocableHandlerMethod.java:150)",
	"org.springframework.web.servlet.mvc.method.annotation.ServletInvocableHandlerMethod.invokeAndHandle(ServletInvocableHandlerMethod.java:118)",
	"org.springframework.web.servlet.mvc.method.annotation.RequestMappingHandlerAdapter.invokeHandlerMethod(RequestMappingHandlerAdapter.java:884)",
	"org.springframework.web.servlet.DispatcherServlet.doDispatch(DispatcherServlet.java:1089)",
	"org.springframework.web.servlet.FrameworkServlet.processRequest(FrameworkServlet.java:1014)",
	"jakarta.servlet.http.HttpServlet.service(HttpServlet.java:590)",
	"org.apache.catalina.core.ApplicationFilterChain.internalDoFilter(ApplicationFilterChain.java:205)",
	"org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:149)",
	"org.springframework.web.filter.OncePerRequestFilter.doFilter(OncePerRequestFilter.java:116)",
	"org.apache.catalina.core.StandardWrapperValve.invoke(StandardWrapperValve.java:167)",
	"org.apache.coyote.http11.Http11Processor.service(Http11Processor.java:391)",
	"org.apache.tomcat.util.net.NioEndpoint$SocketProcessor.doRun(NioEndpoint.java:1744)",
	"java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java:1136)",
	"java.base/java.lang.Thread.run(Thread.java:840)",
	"com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:181)",
	"org.postgresql.core.v3.QueryExecutorImpl.execute(QueryExecutorImpl.java:372)",
}

var javaExceptions = []string{
	`java.lang.NullPointerException: Cannot invoke "String.length()" because "name" is null`,
	`java.lang.IllegalStateException: order ord_%s is already paid`,
	`org.springframework.dao.DataAccessResourceFailureException: Unable to acquire JDBC Connection`,
	`java.net.SocketTimeoutException: Read timed out after 2000 ms (request %s)`,
}

var goFrames = [][2]string{
	{"main.(*Server).handleOrder", "/app/server.go:214"},
	{"main.(*Server).ServeHTTP", "/app/server.go:97"},
	{"github.com/example/orders/internal/pricing.(*Client).Quote", "/app/internal/pricing/client.go:61"},
	{"github.com/example/orders/internal/store.(*DB).Reserve", "/app/internal/store/db.go:133"},
	{"net/http.HandlerFunc.ServeHTTP", "/usr/local/go/src/net/http/server.go:2220"},
	{"net/http.(*ServeMux).ServeHTTP", "/usr/local/go/src/net/http/server.go:2747"},
	{"net/http.serverHandler.ServeHTTP", "/usr/local/go/src/net/http/server.go:3210"},
	{"net/http.(*conn).serve", "/usr/local/go/src/net/http/server.go:2092"},
}

// trace returns the lines of one stack trace, Java or Go.
func (g *corpusGen) trace() [][]byte {
	var lines [][]byte
	add := func(b []byte) { lines = append(lines, b) }
	if g.r.IntN(2) == 0 {
		id := g.hex(nil, 12)
		ex := g.pick(javaExceptions)
		add(fmt.Appendf(nil, "%s ERROR 1 --- [nio-8080-exec-%d] o.a.c.c.C.[.[.[/].[dispatcherServlet] : Servlet.service() threw exception", g.t.Format("2006-01-02 15:04:05.000"), 1+g.r.IntN(200)))
		if bytes.Contains([]byte(ex), []byte("%s")) {
			add(fmt.Appendf(nil, ex, id))
		} else {
			add([]byte(ex))
		}
		start := g.r.IntN(4)
		n := 8 + g.r.IntN(len(javaFrames)-8-start)
		for _, f := range javaFrames[start : start+n] {
			add([]byte("\tat " + f))
		}
		if g.r.IntN(2) == 0 {
			add([]byte("Caused by: org.postgresql.util.PSQLException: Connection to db.internal:5432 refused. Check that the hostname and port are correct and that the postmaster is accepting TCP/IP connections."))
			for _, f := range javaFrames[len(javaFrames)-2:] {
				add([]byte("\tat " + f))
			}
			add(fmt.Appendf(nil, "\t... %d more", 20+g.r.IntN(30)))
		}
		return lines
	}
	add([]byte("panic: runtime error: invalid memory address or nil pointer dereference"))
	add(fmt.Appendf(nil, "[signal SIGSEGV: segmentation violation code=0x1 addr=0x%x pc=0x%x]", g.r.IntN(64)*8, 0x400000+g.r.IntN(0x200000)))
	add(nil)
	add(fmt.Appendf(nil, "goroutine %d [running]:", 1+g.r.IntN(5000)))
	for _, f := range goFrames {
		add(fmt.Appendf(nil, "%s(0xc000%06x, {0x%x, 0xc000%06x})", f[0], g.r.IntN(1<<24), 0x900000+g.r.IntN(0x10000), g.r.IntN(1<<24)))
		add(fmt.Appendf(nil, "\t%s +0x%x", f[1], g.r.IntN(0x400)))
	}
	add([]byte("created by net/http.(*Server).Serve in goroutine 1"))
	add(fmt.Appendf(nil, "\t/usr/local/go/src/net/http/server.go:3360 +0x%x", g.r.IntN(0x400)))
	return lines
}

// TestCorpus checks that the corpora are what the driver writes (one
// json-file object per line with log, stream and time; times not
// decreasing), that generation is deterministic and that the mix matches the
// documentation; it logs the mix. With -corpus-out it also writes a corpus
// to a file for scripts/compression-compare.sh.
func TestCorpus(t *testing.T) {
	for _, kind := range []string{corpusShort, corpusKiB} {
		t.Run(kind, func(t *testing.T) {
			c := genCorpus(kind, 4<<20, corpusSeed)
			if again := genCorpus(kind, 4<<20, corpusSeed); !bytes.Equal(c.data, again.data) {
				t.Fatal("generation is not deterministic")
			}
			if other := genCorpus(kind, 1<<20, corpusSeed+1); bytes.Equal(c.data[:1<<20], other.data[:1<<20]) {
				t.Fatal("seed is ignored")
			}
			prev := time.Time{}
			var sum int
			for i, rec := range c.recs {
				sum += len(rec)
				var r struct {
					Log    *string `json:"log"`
					Stream string  `json:"stream"`
					Time   string  `json:"time"`
				}
				dec := json.NewDecoder(bytes.NewReader(rec))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&r); err != nil {
					t.Fatalf("record %d %q: %v", i, rec, err)
				}
				if rec[len(rec)-1] != '\n' || bytes.IndexByte(rec[:len(rec)-1], '\n') >= 0 {
					t.Fatalf("record %d is not one line: %q", i, rec)
				}
				if r.Log == nil || len(*r.Log) == 0 || (*r.Log)[len(*r.Log)-1] != '\n' {
					t.Fatalf("record %d: log does not end in a newline: %q", i, rec)
				}
				if r.Stream != "stdout" && r.Stream != "stderr" {
					t.Fatalf("record %d: stream %q", i, r.Stream)
				}
				ts, err := time.Parse(time.RFC3339Nano, r.Time)
				if err != nil || !ts.Equal(c.times[i]) || ts.Before(prev) {
					t.Fatalf("record %d: time %q (want %v, after %v): %v", i, r.Time, c.times[i], prev, err)
				}
				prev = ts
				if kind == corpusShort && bytes.HasPrefix([]byte(*r.Log), []byte(`{"ts"`)) && !json.Valid([]byte(*r.Log)) {
					t.Fatalf("record %d: app log is not JSON: %q", i, *r.Log)
				}
			}
			if sum != len(c.data) || len(c.data) < 4<<20 {
				t.Fatalf("records sum to %d bytes, data has %d", sum, len(c.data))
			}
			n := len(c.recs)
			mean := float64(len(c.data)) / float64(n)
			t.Logf("%s: %d records, %d bytes, mean %.0f B/record", kind, n, len(c.data), mean)
			for _, src := range []string{"access", "app", "trace"} {
				t.Logf("  %-6s %5.1f%% of records, %5.1f%% of bytes", src, 100*float64(c.mixRecs[src])/float64(n), 100*float64(c.mixBytes[src])/float64(len(c.data)))
			}
			share := func(src string) float64 { return float64(c.mixRecs[src]) / float64(n) }
			switch kind {
			case corpusShort:
				if s := share("access"); s < 0.50 || s > 0.58 {
					t.Errorf("access share %.3f, documented about 0.54", s)
				}
				if s := share("app"); s < 0.35 || s > 0.43 {
					t.Errorf("app share %.3f, documented about 0.38", s)
				}
				if s := share("trace"); s < 0.04 || s > 0.10 {
					t.Errorf("trace share %.3f, documented about 0.08", s)
				}
				if mean < 200 || mean > 400 {
					t.Errorf("mean record %.0f B, documented about 350", mean)
				}
			case corpusKiB:
				if mean < 900 || mean > 1200 {
					t.Errorf("mean record %.0f B, documented about 1 KiB", mean)
				}
			}
		})
	}
	if *corpusOut != "" {
		c := loadCorpus(*corpusKind, *corpusSize)
		if err := os.WriteFile(*corpusOut, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s corpus, %d records, %d bytes, to %s", *corpusKind, len(c.recs), len(c.data), *corpusOut)
	}
}
