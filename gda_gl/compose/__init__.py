"""Composition: runs + view state -> what to draw, as numpy arrays and plain data. Compute only, no GL.

The curve (:mod:`.scene`: :func:`~.scene.compose` -> View + Frame), one line search's details
(:mod:`.detail`), the series panels (:mod:`.seriesview`), the compare quantities (:mod:`.compare`),
ticks (:mod:`.ticks`), the x axes and their maps (:mod:`.xaxis`), the view state (:mod:`.state`), the
drawn view and its pixel mapping (:mod:`.view`), layouts (:mod:`.layout`), text rasterised to numpy
(:mod:`.textlayer`), colours (:mod:`.style`), the highlight filter (:mod:`.filters`), runs as windows onto
their recordings (:mod:`.rundata`, :mod:`.growable`), the ``info`` text (:mod:`.summary`) and the
brute-force twin of the level-of-detail path (:mod:`.lod`).

Layer: imports :mod:`recorder` and numpy only; :mod:`gda_gl.gl` draws what this package returns.
"""
