// Command loadgen is the closed-loop HTTP load generator for bench/router: the same binary
// drives every target (direct, our router, LiteLLM, nginx) so differences are the target's.
//
// Closed loop: -c workers each send one request, wait for the whole answer, and send the
// next, over keep-alive connections, for -d after a -warmup. Non-streaming requests record
// total latency; streaming requests record time to the first body byte (TTFT) and total.
// -hold N opens N streams at once, reports when every one has its first byte, keeps them
// open for -hold-for, then drains them (used to measure RSS at N concurrent streams).
//
// Only the Go standard library is used: build with `go build -o loadgen main.go`.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	Requests  int       `json:"requests"`
	Errors    int       `json:"errors"`
	Seconds   float64   `json:"seconds"`
	RPS       float64   `json:"rps"`
	Latency   quantiles `json:"latency_ms"`
	TTFT      quantiles `json:"ttft_ms"`
	FirstErr  string    `json:"first_error,omitempty"`
	HoldReady int       `json:"hold_ready,omitempty"`
}

type quantiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Mean float64 `json:"mean"`
}

func summarize(v []float64) quantiles {
	if len(v) == 0 {
		return quantiles{}
	}
	sort.Float64s(v)
	at := func(q float64) float64 { return v[int(q*float64(len(v)-1)+0.5)] }
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	return quantiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Mean: sum / float64(len(v))}
}

type sample struct{ total, ttft float64 }

func main() {
	url := flag.String("url", "", "POST target")
	body := flag.String("body", "", "JSON request body")
	conc := flag.Int("c", 1, "concurrent workers")
	dur := flag.Duration("d", 5*time.Second, "measured duration")
	warm := flag.Duration("warmup", time.Second, "unmeasured warm-up")
	stream := flag.Bool("stream", false, "streaming request: record TTFT")
	hold := flag.Int("hold", 0, "open this many streams at once and hold them")
	holdFor := flag.Duration("hold-for", 3*time.Second, "how long to hold the streams once all are open")
	flag.Parse()

	transport := &http.Transport{
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: max(*conc, *hold) + 8,
		DisableCompression:  true,
		IdleConnTimeout:     60 * time.Second,
	}
	client := &http.Client{Transport: transport, Timeout: 120 * time.Second}
	payload := []byte(*body)

	var firstErr atomic.Value
	doOne := func(onFirst func()) (sample, bool) {
		t0 := time.Now()
		resp, err := client.Post(*url, "application/json", bytes.NewReader(payload))
		if err != nil {
			firstErr.CompareAndSwap(nil, err.Error())
			return sample{}, false
		}
		defer resp.Body.Close()
		buf := make([]byte, 32*1024)
		n, err := resp.Body.Read(buf)
		ttft := time.Since(t0)
		if onFirst != nil {
			onFirst()
		}
		for n > 0 && err == nil {
			n, err = resp.Body.Read(buf)
		}
		if err != nil && err != io.EOF {
			firstErr.CompareAndSwap(nil, err.Error())
			return sample{}, false
		}
		if resp.StatusCode != 200 {
			firstErr.CompareAndSwap(nil, fmt.Sprintf("HTTP %d", resp.StatusCode))
			return sample{}, false
		}
		return sample{total: ms(time.Since(t0)), ttft: ms(ttft)}, true
	}

	if *hold > 0 {
		runHold(*hold, *holdFor, doOne, &firstErr)
		return
	}

	var wg sync.WaitGroup
	start := time.Now()
	measureFrom := start.Add(*warm)
	end := measureFrom.Add(*dur)
	per := make([][]sample, *conc)
	errs := make([]int, *conc)
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				t := time.Now()
				if t.After(end) {
					return
				}
				s, ok := doOne(nil)
				if t.Before(measureFrom) {
					continue
				}
				if !ok {
					errs[w]++
					continue
				}
				per[w] = append(per[w], s)
			}
		}(w)
	}
	wg.Wait()
	var totals, ttfts []float64
	errors := 0
	for w := range per {
		errors += errs[w]
		for _, s := range per[w] {
			totals = append(totals, s.total)
			ttfts = append(ttfts, s.ttft)
		}
	}
	r := result{Requests: len(totals), Errors: errors, Seconds: dur.Seconds()}
	r.RPS = float64(len(totals)) / dur.Seconds()
	r.Latency = summarize(totals)
	if *stream {
		r.TTFT = summarize(ttfts)
	}
	if e, ok := firstErr.Load().(string); ok {
		r.FirstErr = e
	}
	emit(r)
}

func runHold(n int, holdFor time.Duration, doOne func(func()) (sample, bool), firstErr *atomic.Value) {
	var opened, done sync.WaitGroup
	var ok, ready atomic.Int64
	opened.Add(n)
	done.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			defer done.Done()
			once := sync.Once{}
			mark := func() { once.Do(func() { ready.Add(1); opened.Done() }) }
			if _, good := doOne(mark); good {
				ok.Add(1)
			}
			mark() // a failed request must not block the barrier
		}()
	}
	opened.Wait()
	// The orchestrator reads this line, samples the target's RSS, and waits for the end.
	fmt.Fprintf(os.Stderr, "HOLDING %d streams after %.1fs\n", ready.Load(), time.Since(t0).Seconds())
	time.Sleep(holdFor)
	fmt.Fprintln(os.Stderr, "RELEASED")
	done.Wait()
	r := result{Requests: int(ok.Load()), Errors: n - int(ok.Load()), HoldReady: int(ready.Load())}
	if e, isStr := firstErr.Load().(string); isStr {
		r.FirstErr = e
	}
	emit(r)
}

func emit(r result) {
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000.0 }
