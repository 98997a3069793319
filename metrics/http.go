package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// CheckTimeout bounds each health check of a /healthz request.
const CheckTimeout = 5 * time.Second

// Check is one condition /healthz requires.
type Check struct {
	// Name names the check in /healthz replies.
	Name string
	// Run returns nil when the condition holds. It is called by every
	// /healthz request, concurrently when requests are, with a context
	// that ends after CheckTimeout; it must honour it.
	Run func(ctx context.Context) error
}

// HandlerOptions configure Handler.
type HandlerOptions struct {
	// Checks are what /healthz requires, run in order.
	Checks []Check
	// Pprof serves net/http/pprof under /debug/pprof/ (plugin setting
	// PPROF). Default off: profiles reveal the program's internals and
	// a CPU profile costs CPU while it runs.
	Pprof bool
	// Logger receives errors of the /metrics handler (a collector that
	// failed). Default slog.Default().
	Logger *slog.Logger
}

// Handler returns the handler of the metrics address:
//
//	GET /metrics        the metrics gathered from g, in Prometheus' formats
//	GET /healthz        200 "ok" when every check passes, else 503 naming each failure
//	GET /debug/pprof/   net/http/pprof's index and profiles, only with opts.Pprof
//
// Every other path is 404. The handlers are safe for concurrent use.
func Handler(g prometheus.Gatherer, opts HandlerOptions) http.Handler {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
		// A scrape is cheap; this only bounds a flood.
		MaxRequestsInFlight: 8,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		code, body := health(r.Context(), opts.Checks)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	})
	if opts.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// health runs the checks and returns the status and body of a /healthz
// reply: 200 and "ok" followed by the checks passed, or 503 and a line per
// check, each failing one with its error.
func health(ctx context.Context, checks []Check) (int, string) {
	var b strings.Builder
	code := http.StatusOK
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
		err := c.Run(cctx)
		cancel()
		if err != nil {
			code = http.StatusServiceUnavailable
			fmt.Fprintf(&b, "%s: FAIL: %v\n", c.Name, err)
		} else {
			fmt.Fprintf(&b, "%s: ok\n", c.Name)
		}
	}
	if code == http.StatusOK {
		return code, "ok\n" + b.String()
	}
	return code, b.String()
}
