// marker.frag.glsl: anti-aliased marker shapes with a darker outline.
#include "marker_varyings.glsl"

void main() {
    float r = 0.5 * v_size;
    float d;
    if (v_shape < 0.5) {
        d = length(v_uv) - r;                                  // disc
    } else if (v_shape < 1.5) {
        d = max(abs(v_uv.x), abs(v_uv.y)) - r;                 // square
    } else if (v_shape < 2.5) {
        d = max(abs(v_uv.x) * 0.866 + v_uv.y * 0.5, -v_uv.y) - 0.5 * r;  // triangle
    } else {
        d = abs(length(v_uv) - 0.7 * r) - 0.3 * r;             // ring
    }
    float cover = clamp(0.5 * AA - d, 0.0, 1.0);
    if (cover <= 0.0) discard;
    float edge = clamp(d + 1.5, 0.0, 1.0);                     // outline in the outer 1.5 px
    vec3 rgb = mix(v_color.rgb, v_color.rgb * 0.55, edge);
    gl_FragColor = vec4(rgb, v_color.a * cover);
}
