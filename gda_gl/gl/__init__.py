"""Drawing (VisPy gloo): draws what :mod:`gda_gl.compose` returns, nothing else decided here.

:mod:`.backend` (choosing VisPy's backend once), :mod:`.shaders` (the GLSL loader), :mod:`.programs`
(the shader programs), :mod:`.render` (a Frame with axes, legend and colour bar), :mod:`.detail`
(one line search), :mod:`.overlays` (what the explorer draws over the curve), :mod:`.comparefig`
(the figures of ``gda-gl compare``) and :mod:`.export` (offscreen framebuffers).

Layer: imports :mod:`recorder` and :mod:`gda_gl.compose`; never :mod:`gda_gl.session` or a face.
"""
