package github_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/bradleyfalzon/ghinstallation/v2"

	"github.com/ghbridge/ghbridge/github"
	"github.com/ghbridge/ghbridge/github/githubtest"
)

func benchEnv(b *testing.B) (*githubtest.Server, int64) {
	srv := githubtest.NewServer(githubtest.WithContract(b))
	b.Cleanup(srv.Close)
	inst := srv.AddInstallation(githubtest.AppInstallation{Account: "acme", AllRepositories: true})
	return srv, inst.ID
}

func benchCache(b *testing.B, srv *githubtest.Server) *github.TokenCache {
	b.Helper()
	f, err := github.NewClientFactory()
	if err != nil {
		b.Fatal(err)
	}
	cache, err := f.TokenCache(srv.AppConfig())
	if err != nil {
		b.Fatal(err)
	}
	return cache
}

// BenchmarkTokenWarm measures a cache hit. Baseline: ghinstallation's own
// per-installation Transport.Token on a warm token.
func BenchmarkTokenWarm(b *testing.B) {
	srv, id := benchEnv(b)
	ctx := context.Background()
	b.Run("ghbridge", func(b *testing.B) {
		cache := benchCache(b, srv)
		if _, err := cache.Token(ctx, id); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cache.Token(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ghbridge-parallel", func(b *testing.B) {
		cache := benchCache(b, srv)
		if _, err := cache.Token(ctx, id); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cache.Token(ctx, id); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("baseline-ghinstallation", func(b *testing.B) {
		tr, err := ghinstallation.New(http.DefaultTransport, srv.AppID, id, []byte(srv.PrivateKeyPEM()))
		if err != nil {
			b.Fatal(err)
		}
		tr.BaseURL = strings.TrimSuffix(srv.URL, "/")
		if _, err := tr.Token(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tr.Token(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTokenCold100 has 100 goroutines ask for the same installation
// at once, with nothing cached; each iteration must cost one exchange.
func BenchmarkTokenCold100(b *testing.B) {
	srv, id := benchEnv(b)
	ctx := context.Background()
	cache := benchCache(b, srv)
	before := srv.TokenExchanges(id)
	n := 0
	for b.Loop() {
		cache.Revoke(id)
		var wg sync.WaitGroup
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := cache.Token(ctx, id); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		n++
	}
	b.ReportMetric(float64(srv.TokenExchanges(id)-before)/float64(n), "exchanges/op")
}
