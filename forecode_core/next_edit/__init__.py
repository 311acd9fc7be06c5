"""Next-edit prediction: the pure core (edit events, propagation, related files, the model
input and its answer filters)."""

# Native next-edit formats register their renderers for their profiles when imported: a Zeta
# GGUF gets its own (``native_zeta``) wherever the core renders a next-edit prompt.
from forecode_core.next_edit import native_zeta as native_zeta
