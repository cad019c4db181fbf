// segment.vert.glsl: one line segment p0 -> p1 as a screen-space quad (two triangles).
// Wide, anti-aliased lines without glLineWidth (absent in core profiles).
#include "view.glsl"

attribute vec2 a_p0;       // data position of the start, relative to the view origin
attribute vec2 a_p1;       // data position of the end
attribute vec2 a_corner;   // x: 0 at p0, 1 at p1; y: -1 or +1 (side)
attribute vec4 a_color;
uniform float u_width;     // line width in px
uniform float u_space;     // 0: positions in data units, 1: in px

varying vec4 v_color;
varying float v_across;    // signed distance from the centre line in px
varying float v_half;

const float AA = {{ AA_PX }};

void main() {
    vec2 q0 = u_space > 0.5 ? a_p0 : data_to_px(a_p0);
    vec2 q1 = u_space > 0.5 ? a_p1 : data_to_px(a_p1);
    vec2 d = q1 - q0;
    float len = length(d);
    vec2 t = len > 1e-6 ? d / len : vec2(1.0, 0.0);
    vec2 n = vec2(-t.y, t.x);
    float h = 0.5 * u_width;
    float reach = h + AA;
    // extend past both ends by half the width so consecutive segments join without notches
    vec2 p = mix(q0, q1, a_corner.x) + n * (a_corner.y * reach) + t * ((2.0 * a_corner.x - 1.0) * h);
    v_across = a_corner.y * reach;
    v_half = h;
    v_color = a_color;
    gl_Position = px_to_clip(p);
}
