package bench

import (
	"context"
	"fmt"
	"math"
)

// growthPoint is what one pool size costs.
type growthPoint struct {
	Devices       int     `json:"devices"`
	ImportSeconds float64 `json:"importSeconds"`
	RSSMB         float64 `json:"rssMB"`
	SteadyCores   float64 `json:"steadyCores"`
	SteadySeconds float64 `json:"steadyWindowSeconds"`
}

// growthResult fits each cost against the pool size: the slope per 1,000
// devices, and the exponent b of cost = a * devices^b (1 is linear, below
// 1 better than linear).
type growthResult struct {
	Points             []growthPoint `json:"points"`
	ImportSecondsPer1k float64       `json:"importSecondsPer1kDevices"`
	RSSMBPer1k         float64       `json:"rssMBPer1kDevices"`
	CoresPer1k         float64       `json:"steadyCoresPer1kDevices"`
	// Exponents are absent when a cost was zero (nothing to fit).
	ImportExponent *float64 `json:"importExponent,omitempty"`
	RSSExponent    *float64 `json:"rssExponent,omitempty"`
	CoresExponent  *float64 `json:"steadyCoresExponent,omitempty"`
}

// maxLinearExponent is the growth exponent still called linear: three
// points measured on a shared machine are noisy.
const maxLinearExponent = 1.2

// measureGrowthPoint imports a pool of n devices and holds it in steady
// state for the growth window, then stops its bridge.
func measureGrowthPoint(ctx context.Context, r *rig, n int, physicalPerDevice float64) (growthPoint, error) {
	pt := growthPoint{Devices: n}
	p, err := newPool(ctx, r, fmt.Sprintf("grow-%d", n), n)
	if err != nil {
		return pt, err
	}
	defer p.close()
	imp, err := p.measureImport(ctx, physicalPerDevice*float64(n))
	if err != nil {
		return pt, err
	}
	pt.ImportSeconds = imp.Seconds
	gen, err := newTelemetryGen(ctx, p, r.cfg.changingShare)
	if err != nil {
		return pt, err
	}
	defer gen.close()
	st, err := p.measureSteady(ctx, gen, r.cfg.growthWindow)
	if err != nil {
		return pt, err
	}
	pt.RSSMB, pt.SteadyCores, pt.SteadySeconds = st.BridgeRSSMB, st.BridgeCores, st.WindowSeconds
	return pt, nil
}

func fitGrowth(points []growthPoint) growthResult {
	g := growthResult{Points: points}
	xs := make([]float64, len(points))
	imp, rss, cpu := make([]float64, len(points)), make([]float64, len(points)), make([]float64, len(points))
	for i, pt := range points {
		xs[i] = float64(pt.Devices) / 1000
		imp[i], rss[i], cpu[i] = pt.ImportSeconds, pt.RSSMB, pt.SteadyCores
	}
	g.ImportSecondsPer1k, g.RSSMBPer1k, g.CoresPer1k = slope(xs, imp), slope(xs, rss), slope(xs, cpu)
	g.ImportExponent, g.RSSExponent, g.CoresExponent = exponent(xs, imp), exponent(xs, rss), exponent(xs, cpu)
	return g
}

// slope is the least-squares slope of y against x.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy = sx+xs[i], sy+ys[i]
		sxx, sxy = sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// exponent is the slope of log y against log x; nil when a cost is not
// positive (nothing to fit).
func exponent(xs, ys []float64) *float64 {
	if len(xs) < 2 {
		return nil
	}
	lx, ly := make([]float64, len(xs)), make([]float64, len(ys))
	for i := range xs {
		if xs[i] <= 0 || ys[i] <= 0 {
			return nil
		}
		lx[i], ly[i] = math.Log(xs[i]), math.Log(ys[i])
	}
	b := slope(lx, ly)
	return &b
}
