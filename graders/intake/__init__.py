"""Intake: from a submitted file to a notebook that is safe to execute.

One transformation per module, chained in ``pipeline.intake`` in this order:
  read      bytes -> nbformat v4 notebook (decoding, JSON, nbformat upgrade and validation)
  cells     match the student's cells to the release by grade_id; restore locked and test
            cells from the release; re-insert deleted ones; record every change as a flag
  strip     drop outputs and execution counts so nothing the student ran is trusted
The order matters: matching needs a valid notebook, and stripping happens last so that
flags can still mention what the student's copy held.
"""
