// marker_varyings.glsl: what marker.vert.glsl hands to marker.frag.glsl, and the anti-aliasing width.
varying vec4 v_color;
varying vec2 v_uv;
varying float v_size;   // diameter in px
varying float v_shape;  // 0 disc, 1 square, 2 triangle (pointing up), 3 ring

const float AA = {{ AA_PX }};
