// marker.vert.glsl: markers (trial points, non-finite flags) as screen-space quads.
#include "view.glsl"

attribute vec2 a_center;   // data position relative to the view origin
attribute vec2 a_corner;   // (-1|1, -1|1)
attribute vec4 a_color;
attribute float a_size;    // diameter in px
attribute float a_shape;   // 0 disc, 1 square, 2 triangle (pointing up), 3 ring
uniform float u_pin_top;   // > 0: y is ignored and the marker sits this many px below the plot top
uniform float u_plot_top;  // px

#include "marker_varyings.glsl"

void main() {
    vec2 c = data_to_px(a_center);
    if (a_center.y != a_center.y || u_pin_top > 0.0) {  // NaN y: pin to the top edge
        c.y = u_plot_top - max(u_pin_top, 0.5 * a_size + 1.0);
    }
    float r = 0.5 * a_size + AA;
    v_uv = a_corner * r;
    v_size = a_size;
    v_shape = a_shape;
    v_color = a_color;
    gl_Position = px_to_clip(c + a_corner * r);
}
