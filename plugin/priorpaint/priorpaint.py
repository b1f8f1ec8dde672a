#!/usr/bin/env python3
"""priorpaint for GIMP 3: edit the selection with a GAN prior; the result is a new layer.

GIMP runs this file; it only registers the procedures. The rooms beside it:
``procedures`` (what each entry does), ``canvas`` (the selection, new layers, their place
and the parasites that record each layer's role), ``dialogs`` (GTK) and ``tracing`` (test
traces, inert unless $PRIORPAINT_TRACE is set); ``gimp_bridge`` talks to the backend.

Procedures (Filters > Generative > priorpaint, in workflow order), the scripting contract:

- ``priorpaint-project``             Project selection: the model's reconstruction as layers; adapt
- ``priorpaint-semantic-edit``       direction (string), strength (double), composite, adapt (boolean)
- ``priorpaint-paint-concept``       concept (string), mode (add/remove), composite, adapt
- ``priorpaint-segment``             a label-map layer "priorpaint labels" (legend in its parasite)
- ``priorpaint-apply-segmentation``  applies the painted label-map layer; composite, adapt
- ``priorpaint-drag-points``         the active path's 2-anchor strokes, handle → target; steps, adapt
- ``priorpaint-settings``            url, model, token (the token goes only to the 0600 settings file),
                                     download (the backend fetches the model's weights now, with progress)

``composite`` is "detail" (keep the photo's detail) or "replace" (the generated pixels).
Only the selection's bounding square (with context margin) travels to the backend. Each
result is a new masked layer above the earlier results of the same source layer, added in
one undo step and selected; the user's layers are never modified. Cancelling GIMP's
progress cancels the backend job.
"""

import os
import sys

# GIMP starts this file as a script: its folder (the rooms beside it, gimp_bridge) is imported from
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GObject  # noqa: E402

import drag  # noqa: E402
import procedures  # noqa: E402
from gimp_bridge import ops  # noqa: E402
from tracing import traced  # noqa: E402

MENU = "<Image>/Filters/Generative/priorpaint"
RW = GObject.ParamFlags.READWRITE

PROC_PROJECT = "priorpaint-project"
PROC_EDIT = "priorpaint-semantic-edit"
PROC_PAINT = "priorpaint-paint-concept"
PROC_SEGMENT = "priorpaint-segment"
PROC_APPLY_SEG = "priorpaint-apply-segmentation"
PROC_SETTINGS = "priorpaint-settings"
PROC_DRAG = "priorpaint-drag-points"


# In workflow order; "…" where a dialog opens. GIMP 3 lists a plug-in menu's entries sorted by
# their labels (app/menus/plug-in-menus.c collates "menu path/label" when it builds the menus),
# whatever order the plug-in registers them in: the numbers make that sorted order the
# workflow order (digits sort before letters in every collation; Settings comes last).
PROCEDURES = {
    PROC_PROJECT: ("1 _Project selection…",
                   "See how the model reconstructs the selection",
                   "Fits the generative model to the selection and adds what it makes of it as layers: "
                   "the model's own rendering and, with 'Fit to this photo', the rendering fitted to this "
                   "photo. Useful to judge whether the model can edit this region well before editing it.",
                   procedures.run_project),
    PROC_EDIT: ("2 _Semantic edit…",
                "Change the selection along a named direction (head turn, smile, light, …)",
                "Moves the selection along one of the model's named directions at the strength you choose, "
                "with a live preview in the dialog. The result is a new layer with a mask, placed on top "
                "of the earlier results of the same layer and selected, so you can edit again right away.",
                procedures.run_semantic_edit),
    PROC_PAINT: ("3 Paint _concept…",
                 "Add or remove a concept (hair, door, …) inside the selection",
                 "Switches the model's units for a concept on or off where the selection is. The result is "
                 "a new layer with a mask, selected.",
                 procedures.run_paint_concept),
    PROC_SEGMENT: ("4 Se_gment selection",
                   "Add a label layer showing the parts the model sees in the selection",
                   "Adds the layer 'priorpaint labels': one colour per part (the legend appears in the message "
                   "area). Paint on it with the legend's colours, then run Apply segmentation edit.",
                   procedures.run_segment),
    PROC_APPLY_SEG: ("5 _Apply segmentation edit…",
                     "Edit the photo so its parts follow the painted label layer",
                     "Reads the painted 'priorpaint labels' layer and changes the photo so that its parts "
                     "follow the new labels. Pixels you erased to transparency are kept as they are.",
                     procedures.run_apply_segmentation),
    PROC_DRAG: ("6 _Drag points…",
                "Move points of the selection to targets: each stroke of the active path is handle → target",
                "Reads the active path: each stroke of two anchors (draw it with the Paths tool: click the point "
                "to move, then where it should go) is one drag. The content under each handle moves to its "
                "target; the photo's own pixels move. The result is a new layer with a mask, selected.",
                drag.run_drag),
    PROC_SETTINGS: ("Se_ttings…",
                    "Where the priorpaint backend runs (this computer or a Space), its model and token",
                    "The backend's address (empty: PRIORPAINT_URL, else http://127.0.0.1:7860), the model to "
                    "use (empty: the backend's default) and the token of a backend started with --token. "
                    "Saved in priorpaint's own settings file, readable only by you.",
                    procedures.run_settings),
}


class PriorPaint(Gimp.PlugIn):
    def do_set_i18n(self, name):
        return False

    def do_query_procedures(self):
        return list(PROCEDURES)

    def do_create_procedure(self, name):
        label, blurb, help_text, func = PROCEDURES[name]
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, traced(name, func), None)
        procedure.set_menu_label(label)
        procedure.add_menu_path(MENU)
        procedure.set_documentation(blurb, help_text + " Uses the priorpaint backend (priorpaint serve).", name)
        procedure.set_attribution("priorpaint", "priorpaint (MIT)", "2026")
        if name == PROC_SETTINGS:
            procedure.set_image_types("*")
            procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.ALWAYS)
            procedure.add_string_argument("url", "Backend _URL",
                                          "The backend's address; empty: PRIORPAINT_URL, else http://127.0.0.1:7860",
                                          "", RW)
            procedure.add_string_argument("model", "_Model", "The model to use; empty: the backend's default",
                                          "", RW)
            procedure.add_string_argument("token", "Token",
                                          "For scripts: the token of a backend started with --token. It is "
                                          "saved only in priorpaint's settings file (mode 0600), never in "
                                          "GIMP's saved values", "", RW)
            procedure.add_boolean_argument("download", "_Download the model",
                                           "For scripts: have the backend download the model's weights now "
                                           "(with progress) if it does not have them yet", False, RW)
            return procedure
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        if name == PROC_EDIT:
            procedure.add_string_argument("direction", "_Direction", "The name of one of the model's directions",
                                          "", RW)
            procedure.add_double_argument("strength", "Stre_ngth",
                                          "How far to move along the direction; the dialog's slider covers the "
                                          "direction's range, and a value outside it is brought into it",
                                          -10.0, 10.0, 1.0, RW)
        elif name == PROC_PAINT:
            procedure.add_string_argument("concept", "_Concept", "The name of one of the model's concepts", "", RW)
            mode = Gimp.Choice.new()
            mode.add("add", 0, "Add", "Make the concept appear where the selection is")
            mode.add("remove", 1, "Remove", "Make the concept disappear where the selection is")
            procedure.add_choice_argument("mode", "_Mode", "Add the concept or remove it", mode, "add", RW)
        elif name == PROC_DRAG:
            procedure.add_int_argument("steps", "_Steps", "At most this many optimisation steps (the drag stops "
                                       "earlier when every handle has reached its target); 0: the backend's "
                                       "default", 0, 1000, 0, RW)
        if name in (PROC_EDIT, PROC_PAINT, PROC_APPLY_SEG):
            composite = Gimp.Choice.new()
            composite.add("detail", 0, ops.COMPOSITE_LABELS["detail"],
                          "The photo keeps its own fine detail; the model changes shapes, light and colour")
            composite.add("replace", 1, ops.COMPOSITE_LABELS["replace"],
                          "The edited region is the model's rendering, blended in at the mask's edge")
            composite.add("warp", 2, ops.COMPOSITE_LABELS["warp"],
                          "The photo's own pixels move along the edit's motion (a pose edit uses it by itself)")
            procedure.add_choice_argument("composite", "_Blend", "How the result is blended into the photo",
                                          composite, "detail", RW)
        if name == PROC_PROJECT:
            procedure.add_boolean_argument("show", "_Show the layers",
                                           "Show the added layers at once (otherwise they are added hidden, "
                                           "and the photo stays selected for the next edit)", False, RW)
        if name in (PROC_PROJECT, PROC_EDIT, PROC_PAINT, PROC_APPLY_SEG, PROC_DRAG):
            procedure.add_boolean_argument("adapt", "_Fit to this photo (slower, more faithful)",
                                           "Also fits the model to this photo: slower, but what you did not "
                                           "edit stays faithful to it",
                                           True, RW)
        return procedure


Gimp.main(PriorPaint.__gtype__, sys.argv)
