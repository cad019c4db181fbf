// view.glsl: data -> pixel -> clip transforms shared by every program.
// Positions arrive relative to the view origin (computed in float64 on the CPU),
// so iteration 10,000,000 is as crisp as iteration 10.
uniform vec2 u_resolution;   // framebuffer size in px
uniform vec2 u_plot_origin;  // px position of the view origin (data 0,0 after the CPU offset)
uniform vec2 u_scale;        // px per data unit (x, y)

vec2 data_to_px(vec2 p) {
    return u_plot_origin + p * u_scale;
}

vec4 px_to_clip(vec2 px) {
    return vec4(2.0 * px / u_resolution - 1.0, 0.0, 1.0);
}
