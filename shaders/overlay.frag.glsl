// overlay.frag.glsl: straight-alpha text layer (blended with src_alpha, one_minus_src_alpha).
uniform sampler2D u_texture;
varying vec2 v_texcoord;

void main() {
    gl_FragColor = texture2D(u_texture, v_texcoord);
}
