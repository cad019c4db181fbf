// polyline.vert.glsl: plain GL line strip (1 px, no anti-aliasing): the brute-force
// reference the level-of-detail path is measured against (benchmarks only).
#include "view.glsl"

attribute vec2 a_position;  // data position relative to the view origin

void main() {
    gl_Position = px_to_clip(data_to_px(a_position));
}
