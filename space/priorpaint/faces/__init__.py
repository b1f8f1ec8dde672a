"""Measuring faces: an independent face and landmark detector (MTCNN), used by the measures and
the bench to see what an edit did to a face's geometry. The edits never call it."""
