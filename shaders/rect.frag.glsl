// rect.frag.glsl: flat colour.
varying vec4 v_color;

void main() {
    gl_FragColor = v_color;
}
