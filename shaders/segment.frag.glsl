// segment.frag.glsl: coverage of a wide line with a one-pixel anti-aliased edge.
varying vec4 v_color;
varying float v_across;
varying float v_half;

const float AA = {{ AA_PX }};

void main() {
    float cover = clamp(v_half + 0.5 * AA - abs(v_across), 0.0, 1.0);
    if (cover <= 0.0) discard;
    gl_FragColor = vec4(v_color.rgb, v_color.a * cover);
}
