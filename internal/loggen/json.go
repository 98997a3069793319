package loggen

import "strconv"

// The lines of ModeJSON: JSON application logs (a request record with ids,
// HTTP and SQL details and a cart) of 1000 to 1100 bytes, newline included,
// built without allocating (the generator's cost is part of what a
// benchmarked container spends). Line i is the same on every call and
// machine.

// jsonMinSize is the smallest JSON line, newline included; the cart is
// extended until a line reaches it.
const jsonMinSize = 1000

const hexDigits = "0123456789abcdef"

// rng is a splitmix64 stream: cheap, deterministic, good enough for ids.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

func (r *rng) hex(dst []byte, n int) []byte {
	for n > 0 {
		z := r.next()
		for k := 0; k < 16 && n > 0; k++ {
			dst = append(dst, hexDigits[z&0xf])
			z >>= 4
			n--
		}
	}
	return dst
}

var (
	levels   = []string{"info", "info", "info", "info", "info", "info", "debug", "warn", "error"}
	loggers  = []string{"api.orders", "api.users", "api.search", "worker.billing", "api.cart"}
	messages = []string{"request completed", "order created", "cache miss, loaded from database", "payment authorized", "search served"}
	methods  = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	routes   = []string{"/api/v1/orders/", "/api/v1/users/", "/api/v1/search?q=item-", "/api/v1/cart/", "/api/v2/invoices/"}
	statuses = []string{"200", "200", "200", "200", "201", "204", "304", "400", "404", "500"}
	agents   = []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
		"okhttp/4.12.0",
		"python-requests/2.32.3",
	}
	statements = []string{
		"SELECT o.id, o.status, o.total, o.currency FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.customer_id = $1 AND o.created_at > $2 ORDER BY o.created_at DESC LIMIT 50",
		"UPDATE carts SET updated_at = now(), item_count = item_count + $1 WHERE id = $2 AND tenant_id = $3 RETURNING id, item_count",
		"INSERT INTO payments (id, order_id, amount, currency, provider, status) VALUES ($1, $2, $3, $4, $5, 'authorized')",
	}
)

// jsonStart is the ts of line 0 in Unix milliseconds (2026-11-27T15:44:05.123Z).
const jsonStart = 1795794245123

// appendJSON appends line i of ModeJSON to dst: one JSON object of at
// least jsonMinSize bytes and '\n'. About a third of its bytes are random ids
// and numbers; the rest repeats from line to line, as in real request logs.
func appendJSON(dst []byte, i int) []byte {
	start := len(dst)
	r := rng(uint64(i)*0x2545f4914f6cdd1d + 20261127)
	dst = append(dst, `{"ts":"`...)
	dst = appendTime(dst, jsonStart+int64(i)*3)
	dst = append(dst, `","level":"`...)
	dst = append(dst, levels[r.intn(len(levels))]...)
	dst = append(dst, `","logger":"`...)
	dst = append(dst, loggers[r.intn(len(loggers))]...)
	dst = append(dst, `","msg":"`...)
	dst = append(dst, messages[r.intn(len(messages))]...)
	dst = append(dst, `","request_id":"`...)
	dst = r.hex(dst, 8)
	dst = append(dst, '-')
	dst = r.hex(dst, 4)
	dst = append(dst, "-4"...)
	dst = r.hex(dst, 3)
	dst = append(dst, "-a"...)
	dst = r.hex(dst, 3)
	dst = append(dst, '-')
	dst = r.hex(dst, 12)
	dst = append(dst, `","trace_id":"`...)
	dst = r.hex(dst, 32)
	dst = append(dst, `","span_id":"`...)
	dst = r.hex(dst, 16)
	dst = append(dst, `","http":{"method":"`...)
	dst = append(dst, methods[r.intn(len(methods))]...)
	dst = append(dst, `","path":"`...)
	dst = append(dst, routes[r.intn(len(routes))]...)
	dst = strconv.AppendInt(dst, int64(r.intn(1000000)), 10)
	dst = append(dst, `","status":`...)
	dst = append(dst, statuses[r.intn(len(statuses))]...)
	dst = append(dst, `,"duration_ms":`...)
	dst = appendMillis(dst, r.intn(250000))
	dst = append(dst, `,"bytes_in":`...)
	dst = strconv.AppendInt(dst, int64(r.intn(8192)), 10)
	dst = append(dst, `,"bytes_out":`...)
	dst = strconv.AppendInt(dst, int64(r.intn(65536)), 10)
	dst = append(dst, `,"client_ip":"10.`...)
	dst = strconv.AppendInt(dst, int64(r.intn(4)), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(r.intn(256)), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(r.intn(256)), 10)
	dst = append(dst, `","user_agent":"`...)
	dst = append(dst, agents[r.intn(len(agents))]...)
	dst = append(dst, `"},"user":{"id":`...)
	dst = strconv.AppendInt(dst, int64(r.intn(5000000)), 10)
	dst = append(dst, `,"tenant":"tenant-`...)
	dst = strconv.AppendInt(dst, int64(r.intn(300)), 10)
	dst = append(dst, `","roles":["reader","writer"]},"db":{"statement":"`...)
	dst = append(dst, statements[r.intn(len(statements))]...)
	dst = append(dst, `","rows":`...)
	dst = strconv.AppendInt(dst, int64(r.intn(50)), 10)
	dst = append(dst, `,"duration_ms":`...)
	dst = appendMillis(dst, r.intn(40000))
	dst = append(dst, `},"cart":[`...)
	for k := 0; ; k++ {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"sku":"SKU-`...)
		dst = r.hex(dst, 8)
		dst = append(dst, `","qty":`...)
		dst = strconv.AppendInt(dst, int64(1+r.intn(9)), 10)
		dst = append(dst, `,"price":`...)
		dst = appendMillis(dst, 100+r.intn(500000))
		dst = append(dst, '}')
		if len(dst)-start+3 >= jsonMinSize {
			break
		}
	}
	return append(dst, "]}\n"...)
}

// appendMillis appends v/1000 with three decimals.
func appendMillis(dst []byte, v int) []byte {
	dst = strconv.AppendInt(dst, int64(v/1000), 10)
	dst = append(dst, '.')
	f := v % 1000
	return append(dst, byte('0'+f/100), byte('0'+f/10%10), byte('0'+f%10))
}

// appendTime appends a UTC RFC 3339 time with milliseconds from Unix ms,
// without allocating (time.Time.AppendFormat would do, but this is cheaper
// and the generator's cost is part of what the container spends).
func appendTime(dst []byte, ms int64) []byte {
	days := ms / 86400000
	rem := ms % 86400000
	y, m, d := civil(days)
	dst = appendPad(dst, y, 4)
	dst = append(dst, '-')
	dst = appendPad(dst, m, 2)
	dst = append(dst, '-')
	dst = appendPad(dst, d, 2)
	dst = append(dst, 'T')
	dst = appendPad(dst, int(rem/3600000), 2)
	dst = append(dst, ':')
	dst = appendPad(dst, int(rem/60000%60), 2)
	dst = append(dst, ':')
	dst = appendPad(dst, int(rem/1000%60), 2)
	dst = append(dst, '.')
	dst = appendPad(dst, int(rem%1000), 3)
	return append(dst, 'Z')
}

func appendPad(dst []byte, v, width int) []byte {
	var b [8]byte
	for k := width - 1; k >= 0; k-- {
		b[k] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, b[:width]...)
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's algorithm).
func civil(days int64) (year, month, day int) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return int(y), int(m), int(d)
}
