// Small inline-SVG charts (no chart library): bars per minute for one series, with an
// accessible name that states the totals and the peak, and axis labels people can read.

import { h, s } from './dom.js';
import { clock } from './format.js';

const WIDTH = 600;
const HEIGHT = 150;
const PAD_LEFT = 34;
const PAD_BOTTOM = 22;

/**
 * A bar chart of `points` ({minute: Date, value: number}), oldest first.
 * `title` names it; `tone` picks the bar colour class.
 */
export function barChart({ title, points, tone, unit }) {
  const total = points.reduce((sum, point) => sum + point.value, 0);
  const peak = points.reduce((best, point) => (point.value > best.value ? point : best), points[0] ?? { value: 0 });
  const max = Math.max(1, peak?.value ?? 0);
  const plotWidth = WIDTH - PAD_LEFT;
  const plotHeight = HEIGHT - PAD_BOTTOM;
  const slot = plotWidth / Math.max(1, points.length);
  const summary = total === 0
    ? `${title}: none in the last ${points.length} minutes`
    : `${title}: ${total} ${unit} in the last ${points.length} minutes, at most ${peak.value} in one minute (${clock(peak.minute)})`;
  const bars = points.map((point, index) => {
    const height = (point.value / max) * (plotHeight - 6);
    return s('rect', {
      class: `bar bar-${tone}`,
      x: (PAD_LEFT + index * slot + 1).toFixed(1),
      y: (plotHeight - height).toFixed(1),
      width: Math.max(1, slot - 2).toFixed(1),
      height: height.toFixed(1),
    }, s('title', {}, `${clock(point.minute)}: ${point.value} ${unit}`));
  });
  const first = points[0]?.minute;
  const last = points[points.length - 1]?.minute;
  const svg = s('svg', {
    class: 'chart', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': summary,
    preserveAspectRatio: 'none',
  },
  s('line', { class: 'axis', x1: PAD_LEFT, y1: plotHeight, x2: WIDTH, y2: plotHeight }),
  s('text', { class: 'tick', x: PAD_LEFT - 6, y: 12, 'text-anchor': 'end' }, String(max)),
  s('text', { class: 'tick', x: PAD_LEFT - 6, y: plotHeight, 'text-anchor': 'end' }, '0'),
  first ? s('text', { class: 'tick', x: PAD_LEFT, y: HEIGHT - 4 }, clock(first)) : null,
  last ? s('text', { class: 'tick', x: WIDTH, y: HEIGHT - 4, 'text-anchor': 'end' }, clock(last)) : null,
  bars);
  return h('figure', { class: 'chart-figure' },
    h('figcaption', {}, h('strong', {}, title), ' ', h('span', { class: 'muted' }, `${total} in ${points.length} min`)),
    svg);
}
