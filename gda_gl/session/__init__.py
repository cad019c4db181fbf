"""Opening runs for the faces (CLI, window, notebook): one place for what they share.

* :mod:`.errors`: the one-line wording of every error a user can cause (``gda-gl: error: ...``),
  used by the CLI's exit, the window and the notebook cell;
* :mod:`.open`: recordings opened as runs to draw (:class:`~gda_gl.compose.rundata.RunData`);
* :mod:`.follow`: live runs followed while they are recorded;
* :mod:`.files`: view-state files and every output written atomically (PNG, JSON).

Layer: above :mod:`gda_gl.compose` and :mod:`gda_gl.gl` (it names the GL backend's error), below the faces.
"""
