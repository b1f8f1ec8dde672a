"""Measuring faces: an independent face and landmark detector (MTCNN), used by the measures and
the bench to see what an edit did to a face's geometry, and (:mod:`.landmarks`) to place the warp
composite's motions on a square's face. The edits' latent moves never call it."""
