"""Next-edit prediction: the pure core (edit events, propagation, related files, the model
input and its answer filters)."""
