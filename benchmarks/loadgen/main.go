// Command loadgen sends signed GitHub webhook deliveries to a URL and prints what it measured as JSON.
//
// The same body is sent each time with a fresh X-GitHub-Delivery id, so each delivery is new to the receiver;
// the signature covers the body only, so it is computed once. First `-sequential` deliveries one at a time (each
// one's time to its answer), then `-total` deliveries with `-concurrency` in flight (deliveries per second).
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
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
	SequentialMs []float64 `json:"sequential_ms"`
	PerSecond    float64   `json:"per_second"`
	Failures     int64     `json:"failures"`
}

func deliveryID() string {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(id[:])
}

func main() {
	url := flag.String("url", "", "where to POST")
	bodyFile := flag.String("body", "", "the delivery's JSON body")
	secret := flag.String("secret", "", "the webhook secret")
	event := flag.String("event", "push", "X-GitHub-Event")
	sequential := flag.Int("sequential", 500, "deliveries sent one at a time")
	total := flag.Int("total", 3000, "deliveries sent with -concurrency in flight")
	concurrency := flag.Int("concurrency", 32, "deliveries in flight at once")
	flag.Parse()

	body, err := os.ReadFile(*bodyFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	mac := hmac.New(sha256.New, []byte(*secret))
	mac.Write(body)
	signature := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: *concurrency, MaxConnsPerHost: *concurrency},
	}
	var failures atomic.Int64
	send := func() time.Duration {
		request, _ := http.NewRequest(http.MethodPost, *url, bytes.NewReader(body))
		request.Header.Set("Content-Type", "application/json")
		request.Header.Set("X-GitHub-Event", *event)
		request.Header.Set("X-GitHub-Delivery", deliveryID())
		request.Header.Set("X-Hub-Signature-256", signature)
		started := time.Now()
		response, err := client.Do(request)
		elapsed := time.Since(started)
		if err != nil {
			failures.Add(1)
			fmt.Fprintln(os.Stderr, err)
			return elapsed
		}
		io.Copy(io.Discard, response.Body)
		response.Body.Close()
		if response.StatusCode != http.StatusAccepted {
			failures.Add(1)
			fmt.Fprintln(os.Stderr, "answered", response.StatusCode)
		}
		return elapsed
	}

	out := result{}
	for i := 0; i < *sequential; i++ {
		out.SequentialMs = append(out.SequentialMs, float64(send().Microseconds())/1000)
	}
	sort.Float64s(out.SequentialMs)
	var next atomic.Int64
	var group sync.WaitGroup
	started := time.Now()
	for w := 0; w < *concurrency; w++ {
		group.Add(1)
		go func() {
			defer group.Done()
			for next.Add(1) <= int64(*total) {
				send()
			}
		}()
	}
	group.Wait()
	out.PerSecond = float64(*total) / time.Since(started).Seconds()
	out.Failures = failures.Load()
	json.NewEncoder(os.Stdout).Encode(out)
}
