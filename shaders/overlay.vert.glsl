// overlay.vert.glsl: a textured quad in px (text layer rasterised on the CPU).
#include "view.glsl"

attribute vec2 a_position;  // px
attribute vec2 a_texcoord;
varying vec2 v_texcoord;

void main() {
    v_texcoord = a_texcoord;
    gl_Position = px_to_clip(a_position);
}
