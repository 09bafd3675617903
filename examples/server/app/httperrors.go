package app

import (
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// jsonErrors makes the mux's own answers (404 for an unknown route, 405
// for a known route with another method) JSON like every other error.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		cw := &captureWriter{header: http.Header{}}
		mux.ServeHTTP(cw, r)
		switch {
		case cw.code == http.StatusMethodNotAllowed:
			allow := cw.header.Get("Allow")
			w.Header().Set("Allow", allow)
			writeError(w, cw.code, "method "+r.Method+" not allowed here: use "+strings.ReplaceAll(allow, ", ", " or "))
		case cw.code >= 400:
			writeError(w, cw.code, "no such route: "+r.Method+" "+r.URL.Path)
		default: // a redirect to the cleaned path
			for k, v := range cw.header {
				w.Header()[k] = v
			}
			w.WriteHeader(cw.code)
		}
	})
}

// captureWriter keeps the status and headers the mux answered with and
// drops its plain-text body.
type captureWriter struct {
	header http.Header
	code   int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) Write(b []byte) (int, error) {
	if c.code == 0 {
		c.code = http.StatusOK
	}
	return len(b), nil
}
func (c *captureWriter) WriteHeader(code int) {
	if c.code == 0 {
		c.code = code
	}
}

// accessLog logs one INFO line per request when GHBRIDGE_ACCESS_LOG is
// on. It logs the path, never the query (install callbacks carry codes).
func (s *Server) accessLog(next http.Handler) http.Handler {
	if !s.cfg.AccessLog {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", r.Pattern),
			slog.Int("code", rec.code), slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr), slog.String("user_agent", r.UserAgent()))
	})
}
