// rect.vert.glsl: axis-aligned rectangles (envelope buckets, rules, colour bar),
// never thinner than u_min_px so a one-iteration spike stays visible when zoomed out.
#include "view.glsl"

attribute vec4 a_rect;     // x0, y0, x1, y1 (data relative to the view origin, or px)
attribute vec2 a_corner;   // (0|1, 0|1)
attribute vec4 a_color;
uniform float u_space;     // 0: data units, 1: px
uniform float u_min_px;    // minimum width and height in px

varying vec4 v_color;

void main() {
    vec2 lo = u_space > 0.5 ? a_rect.xy : data_to_px(a_rect.xy);
    vec2 hi = u_space > 0.5 ? a_rect.zw : data_to_px(a_rect.zw);
    vec2 a = min(lo, hi);
    vec2 b = max(lo, hi);
    vec2 c = 0.5 * (a + b);
    vec2 half_size = max(0.5 * (b - a), vec2(0.5 * u_min_px));
    vec2 p = c + (2.0 * a_corner - 1.0) * half_size;
    v_color = a_color;
    gl_Position = px_to_clip(p);
}
