// Package bench measures the bridge for bin/bench: how fast it imports, how
// quickly changes cross in each direction, how fast commands reach devices,
// what a pool at rest costs, how much telemetry it ingests, and how the
// costs grow with the pool; each figure beside the physical limit of the
// machine it ran on. cmd/bench parses the command line and calls Run.
package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// Config is one benchmark run's settings (see ParseConfig).
type Config = config

// ParseConfig reads bin/bench's command line.
func ParseConfig(args []string) (*Config, error) { return parseConfig(args) }

// Timeout bounds the whole run.
func (c *config) Timeout() time.Duration { return c.timeout }

// Run measures every phase in order, then prints the table and writes it,
// the raw figures (JSON) and a latency chart (SVG) into the -out directory,
// also when a phase failed; the error says what failed.
func Run(ctx context.Context, cfg *Config) error {
	res, err := run(ctx, cfg)
	if res != nil {
		fmt.Println()
		fmt.Print(res.markdown())
		if werr := res.write(cfg.out); werr != nil {
			return fmt.Errorf("write results: %w", werr)
		}
		fmt.Printf("\nWrote %s, %s and %s.\n", filepath.Join(cfg.out, "results.md"), filepath.Join(cfg.out, "results.json"),
			filepath.Join(cfg.out, "latency.svg"))
	}
	return err
}
