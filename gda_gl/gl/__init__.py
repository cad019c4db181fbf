"""OpenGL side of the engine (VisPy gloo): backend choice, shader programs, offscreen targets.

Only this subpackage and the modules that draw import VisPy; compute modules
(:mod:`gda_gl.lod`, :mod:`gda_gl.scene`, :mod:`gda_gl.ticks`) never do.
"""
