package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The cost curves as a PNG (-plot): four panels, CPU and RSS against
// readers of one camera and against cameras, a line per relay. Drawn with
// the standard image packages and x/image's fixed 7x13 font: a charting
// module would add far more than these four line charts need.

const (
	plotW, plotH = 1200, 820
	panelW       = plotW / 2
	panelH       = (plotH - 40) / 2 // 40: the legend row at the top
	marginL      = 64
	marginR      = 24
	marginT      = 34
	marginB      = 44
)

var (
	plotInk  = color.RGBA{0x22, 0x22, 0x22, 0xff}
	plotGrid = color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	// relayColors: camgate first, then the peers in a fixed order.
	relayColors = map[string]color.RGBA{
		"camgate":  {0x1f, 0x62, 0xb4, 0xff},
		"mediamtx": {0xe0, 0x6c, 0x00, 0xff},
		"go2rtc":   {0x2c, 0x96, 0x2c, 0xff},
	}
	otherColor = color.RGBA{0x88, 0x44, 0xaa, 0xff}
)

func relayColor(name string) color.RGBA {
	if c, ok := relayColors[name]; ok {
		return c
	}
	return otherColor
}

// plotSeries is one relay's line in a panel.
type plotSeries struct {
	relay string
	xs    []float64
	ys    []float64
}

// writeCurvesPNG draws sets into path.
func writeCurvesPNG(path string, sets []curveSet) error {
	img := renderCurves(sets)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		_ = f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

func renderCurves(sets []curveSet) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)

	// Legend.
	x := marginL
	for _, cs := range sets {
		c := relayColor(cs.relay)
		fillRect(img, image.Rect(x, 16, x+28, 20), c)
		drawText(img, x+34, 23, cs.relay, plotInk)
		x += 34 + 7*len(cs.relay) + 30
	}

	type panel struct {
		title string
		xName string
		pick  func(curveSet) []curvePoint
		value func(curvePoint) float64
	}
	panels := []panel{
		{"CPU, % of one core: one camera, N readers", "readers", func(c curveSet) []curvePoint { return c.readers }, func(p curvePoint) float64 { return p.s.cpuPct }},
		{"RSS, MB: one camera, N readers", "readers", func(c curveSet) []curvePoint { return c.readers }, func(p curvePoint) float64 { return mb(p.s.rssEnd) }},
		{"CPU, % of one core: N cameras, one reader each", "cameras", func(c curveSet) []curvePoint { return c.cameras }, func(p curvePoint) float64 { return p.s.cpuPct }},
		{"RSS, MB: N cameras, one reader each", "cameras", func(c curveSet) []curvePoint { return c.cameras }, func(p curvePoint) float64 { return mb(p.s.rssEnd) }},
	}
	for i, pn := range panels {
		var series []plotSeries
		for _, cs := range sets {
			s := plotSeries{relay: cs.relay}
			for _, pt := range pn.pick(cs) {
				s.xs = append(s.xs, float64(pt.n))
				s.ys = append(s.ys, pn.value(pt))
			}
			if len(s.xs) > 0 {
				series = append(series, s)
			}
		}
		r := image.Rect((i%2)*panelW, 40+(i/2)*panelH, (i%2+1)*panelW, 40+(i/2+1)*panelH)
		drawPanel(img, r, pn.title, pn.xName, series)
	}
	return img
}

// drawPanel draws one chart into r: axes from 0, five ticks each, the
// series as lines with a mark on every measured point.
func drawPanel(img *image.RGBA, r image.Rectangle, title, xName string, series []plotSeries) {
	drawText(img, r.Min.X+marginL, r.Min.Y+20, title, plotInk)
	area := image.Rect(r.Min.X+marginL, r.Min.Y+marginT, r.Max.X-marginR, r.Max.Y-marginB)
	if len(series) == 0 {
		drawText(img, area.Min.X+10, area.Min.Y+20, "not measured", plotInk)
		return
	}
	var maxX, maxY float64
	for _, s := range series {
		for i := range s.xs {
			maxX = math.Max(maxX, s.xs[i])
			maxY = math.Max(maxY, s.ys[i])
		}
	}
	xTop, xStep := niceScale(maxX)
	yTop, yStep := niceScale(maxY)
	px := func(v float64) int { return area.Min.X + int(math.Round(v/xTop*float64(area.Dx()))) }
	py := func(v float64) int { return area.Max.Y - int(math.Round(v/yTop*float64(area.Dy()))) }

	for v := 0.0; v <= yTop+yStep/2; v += yStep {
		y := py(v)
		drawLine(img, area.Min.X, y, area.Max.X, y, plotGrid, 1)
		label := formatTick(v, yStep)
		drawText(img, area.Min.X-8-7*len(label), y+4, label, plotInk)
	}
	for v := 0.0; v <= xTop+xStep/2; v += xStep {
		x := px(v)
		drawLine(img, x, area.Max.Y, x, area.Max.Y+4, plotInk, 1)
		label := formatTick(v, xStep)
		drawText(img, x-7*len(label)/2, area.Max.Y+18, label, plotInk)
	}
	drawText(img, area.Max.X-7*len(xName), area.Max.Y+36, xName, plotInk)
	drawLine(img, area.Min.X, area.Max.Y, area.Max.X, area.Max.Y, plotInk, 1)
	drawLine(img, area.Min.X, area.Min.Y, area.Min.X, area.Max.Y, plotInk, 1)

	for _, s := range series {
		c := relayColor(s.relay)
		for i := range s.xs {
			x, y := px(s.xs[i]), py(s.ys[i])
			if i > 0 {
				drawLine(img, px(s.xs[i-1]), py(s.ys[i-1]), x, y, c, 2)
			}
			fillRect(img, image.Rect(x-3, y-3, x+4, y+4), c)
		}
	}
}

// niceScale returns an axis top of 1, 2, 2.5, 4, 5 or 8 times a power
// of ten at or above max, and a step that cuts it into four or five.
func niceScale(max float64) (top, step float64) {
	if max <= 0 {
		return 1, 0.2
	}
	mag := math.Pow(10, math.Floor(math.Log10(max)))
	for _, m := range []struct{ top, ticks float64 }{{1, 5}, {2, 4}, {2.5, 5}, {4, 4}, {5, 5}, {8, 4}, {10, 5}} {
		if m.top*mag >= max*(1-1e-9) {
			return m.top * mag, m.top * mag / m.ticks
		}
	}
	return 10 * mag, 2 * mag
}

// formatTick prints v with as many decimals as step needs.
func formatTick(v, step float64) string {
	d := 0
	for d < 3 && math.Abs(step*math.Pow(10, float64(d))-math.Round(step*math.Pow(10, float64(d)))) > 1e-9 {
		d++
	}
	return strconv.FormatFloat(v, 'f', d, 64)
}

func drawText(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func fillRect(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

// drawLine draws from (x0,y0) to (x1,y1), width pixels wide (Bresenham).
func drawLine(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, width int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		for i := 0; i < width; i++ {
			for j := 0; j < width; j++ {
				img.SetRGBA(x0+i, y0+j, c)
			}
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
